/// The arguments of one `flipt-bench` subcommand, read front to back; errors carry the subcommand's usage.
struct BenchmarkArguments {
    private var rest: ArraySlice<String>
    private let usage: String

    init(_ arguments: [String], usage: String) {
        rest = arguments[...]
        self.usage = usage
    }

    /// The next argument, or nil after the last.
    mutating func next() -> String? { rest.popFirst() }

    /// The value that follows option `name`.
    mutating func value(_ name: String) throws -> String {
        guard let next = rest.popFirst() else { throw BenchmarkFailure("\(name) needs a value\n\n\(usage)") }
        return next
    }

    /// The positive integer that follows option `name`.
    mutating func number(_ name: String) throws -> Int {
        let text = try value(name)
        guard let count = Int(text), count > 0 else {
            throw BenchmarkFailure("\(name) needs a positive integer, not \(text)")
        }
        return count
    }
}
