/// Compares this engine with the official engine. Written by the engine-benchmark work.
enum EngineBenchmark {
    static func run(arguments: [String]) { print("engine benchmark: not written yet") }
}
