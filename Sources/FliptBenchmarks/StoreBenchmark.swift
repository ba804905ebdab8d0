/// Measures the SQLite snapshot cache. Written by the store work.
enum StoreBenchmark {
    static func run(arguments: [String]) { print("store benchmark: not written yet") }
}
