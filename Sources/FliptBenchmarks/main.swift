// flipt-bench: benchmarks that need a release build.
//   flipt-bench engine …   this engine against the official engine (see EngineBenchmark.swift)
//   flipt-bench store …    SQLite cold load and write figures (see StoreBenchmark.swift)
//   flipt-bench client …   the public FliptClient API against the bare engine (see ClientBenchmark.swift)
//   flipt-bench changes …  the flag-change diff of a snapshot replacement against decoding (ChangeBenchmark.swift)
//   flipt-bench hooks …    hooks, default-value forms and evaluation metrics per evaluation (see HooksBenchmark.swift)
//   flipt-bench load …     decode + index, cold boot from the cache, and memory (see LoadBenchmark.swift)

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "engine":
    EngineBenchmark.run(arguments: Array(arguments.dropFirst()))
case "store":
    StoreBenchmark.run(arguments: Array(arguments.dropFirst()))
case "load":
    LoadBenchmark.run(arguments: Array(arguments.dropFirst()))
case "client":
    ClientBenchmark.run(arguments: Array(arguments.dropFirst()))
case "changes":
    ChangeBenchmark.run(arguments: Array(arguments.dropFirst()))
case "hooks":
    HooksBenchmark.run(arguments: Array(arguments.dropFirst()))
case "soak-client":
    SoakClient.run(arguments: Array(arguments.dropFirst()))
default:
    print(
        "usage: flipt-bench engine|store|load|client|changes|hooks [options]   (run `flipt-bench engine --help` for "
            + "details)"
    )
}
