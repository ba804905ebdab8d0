print("flipt-bench: benchmarks arrive with the engine issue")
