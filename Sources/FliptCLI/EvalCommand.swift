import ArgumentParser
import FliptEngine
import FliptStore
import Foundation

/// `flipt-offline eval`: evaluate flags of a snapshot document, one at a time for people or as JSON lines.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate flags from a snapshot document or the cache, offline.",
        discussion: """
            The snapshot comes from --document FILE, or else from the cache: the last good snapshot of the \
            entry that --url, --namespace, --environment and --reference name (--url may be left out when the \
            cache holds that namespace from one server only). The cache is opened read-only and the network is \
            never used. Where the answer came from (cache file, entry, generation, ETag, age) is written to \
            standard error.

            Two forms:

              flipt-offline eval FLAG --entity ID [--context k=v ...] [--type TYPE]
                                 [--json] [--document FILE | --cache PATH]
                Evaluates one flag and prints a short answer (or, with --json, the
                official engine's answer envelope). TYPE is variant or boolean; the
                flag's own type is used when --type is omitted.

              flipt-offline eval --requests FILE|- [--document FILE | --cache PATH]
                Answers JSON-lines requests, one answer line per request line, in
                order:
                  {"type":"variant","flag_key":"f","entity_id":"e","context":{"k":"v"}}
                  {"type":"boolean","flag_key":"f","entity_id":"e","context":{}}
                  {"type":"batch","requests":[{"flag_key":"f","entity_id":"e"}]}
                  {"type":"list"}
                Each answer is {"status":"success","result":{...},"error_message":null}
                or {"status":"failure","result":null,"error_message":"..."}. A
                malformed line (blank lines included) gets a failure answer; a final
                newline does not start another request. With --requests -, lines are
                read from standard input and answered as they arrive.

            Examples:
              flipt-offline eval new-checkout --entity user-42 --context plan=pro
              flipt-offline eval --requests requests.jsonl --namespace shop
              flipt-offline eval dark-mode --entity device-7 --document doc.json --json

            Exit status:
              0   success (JSON lines: every line was answered, failures included)
              1   the evaluation failed (unknown flag, wrong type), or bad arguments
              2   the snapshot document is invalid (the message names where and why)
              3   a file could not be read
              4   the cache has no file or no snapshot for the entry
              30  the cache file cannot be read
              64  the command line could not be parsed
            """
    )

    /// Exit statuses documented in `--help`.
    enum Status {
        static let evaluationFailed: Int32 = 1
        static let documentInvalid: Int32 = 2
        static let unreadable: Int32 = 3
    }

    @Argument(help: "The key of the flag to evaluate (omit with --requests).")
    var flag: String?

    @Option(name: .long, help: ArgumentHelp("The snapshot document (Flipt's JSON wire format).", valueName: "file"))
    var document: String?

    @OptionGroup(title: "Cache (used when --document is not given)")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the cache entry)")
    var client: ClientOptionGroup

    @Option(
        name: .long,
        help: ArgumentHelp("Answer JSON-lines requests from this file, or - for stdin.", valueName: "file")
    )
    var requests: String?

    @Option(name: .long, help: ArgumentHelp("The entity to evaluate for.", valueName: "id"))
    var entity: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp("A context property, key=value (repeatable; a repeated key keeps its last value).")
    )
    var context: [String] = []

    @Option(name: .long, help: "variant or boolean (default: the flag's own type).")
    var type: FlagKind?

    @Flag(name: .long, help: "Print the official engine's answer envelope instead of a short answer.")
    var json = false

    /// The evaluation kinds a person can ask for.
    enum FlagKind: String, ExpressibleByArgument, CaseIterable {
        case variant, boolean
    }

    func run() throws {
        try CommandFailure.reporting("eval") {
            let snapshot = try loadSnapshot()
            if let requests {
                guard flag == nil, entity == nil, context.isEmpty, type == nil, !json else {
                    fail("--requests answers JSON lines; FLAG, --entity, --context, --type and --json do not apply")
                }
                try answerLines(
                    from: requests,
                    evaluator: JSONLinesEvaluator(snapshot: snapshot, namespace: client.namespace)
                )
            } else {
                try evaluateOne(snapshot: snapshot)
            }
        }
    }

    // MARK: Loading

    /// Reads and decodes the snapshot, from `--document` or from the cache.
    private func loadSnapshot() throws -> Snapshot {
        guard let document else { return try loadCachedSnapshot() }
        if cache.cache != nil { fail("give either --document or --cache, not both") }
        let bytes = try readFile(document)
        do {
            return try Snapshot(document: bytes)
        } catch {
            printError("invalid document \(document): \(error)")
            throw ExitCode(Status.documentInvalid)
        }
    }

    /// The last good snapshot of the selected cache entry; says where it came from on standard error.
    private func loadCachedSnapshot() throws -> Snapshot {
        let store = try cache.openForReading()
        let key = try client.key(in: store)
        let stored = try store.requireLastGood(for: key)
        let snapshot = try stored.decoded()
        let now = Date()
        Terminal.note(
            "flipt-offline eval: from cache \(store.path): \(key), generation \(stored.generation), "
                + "etag \(Describe.etag(stored.etag)), fetched \(Describe.timeAndAge(stored.fetchedAt, now: now)), "
                + "last confirmed \(Describe.age(of: stored.lastConfirmedAt, now: now))"
        )
        return snapshot
    }

    private func readFile(_ path: String) throws -> Data {
        if let data = FileManager.default.contents(atPath: path) { return data }
        printError("cannot read \(path): \(FileReadFailure.reason(path: path))")
        throw ExitCode(Status.unreadable)
    }

    // MARK: JSON lines

    private func answerLines(from path: String, evaluator: JSONLinesEvaluator) throws {
        let input: FileHandle
        if path == "-" {
            input = .standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                printError("cannot read \(path): \(FileReadFailure.reason(path: path))")
                throw ExitCode(Status.unreadable)
            }
            input = handle
        }
        var pending: [UInt8] = []
        while true {
            // `read(upToCount:)` throws where `availableData` would stop the process (a directory, an I/O error).
            let chunk: Data
            do {
                guard let read = try input.read(upToCount: 1 << 16), !read.isEmpty else { break }
                chunk = read
            } catch {
                let reason = path == "-" ? "\(error)" : FileReadFailure.reason(path: path, error: error)
                printError("cannot read \(path == "-" ? "the standard input" : path): \(reason)")
                throw ExitCode(Status.unreadable)
            }
            pending.append(contentsOf: chunk)
            guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
            var output = ""
            var lineStart = 0
            while let newline = pending[lineStart...lastNewline].firstIndex(of: UInt8(ascii: "\n")) {
                output += evaluator.answer(line: pending[lineStart..<newline]) + "\n"
                lineStart = newline + 1
                if lineStart > lastNewline { break }
            }
            pending.removeFirst(lastNewline + 1)
            FileHandle.standardOutput.write(Data(output.utf8))
        }
        if !pending.isEmpty {
            FileHandle.standardOutput.write(Data((evaluator.answer(line: pending) + "\n").utf8))
        }
    }

    // MARK: One flag

    private func evaluateOne(snapshot: Snapshot) throws {
        guard let flag else { fail("give a FLAG to evaluate, or --requests FILE") }
        guard let entity else { fail("give the entity to evaluate for with --entity ID") }
        var properties = EvaluationContext()
        for pair in context {
            guard let equals = pair.firstIndex(of: "=") else { fail("--context takes key=value, not \"\(pair)\"") }
            properties[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let kind = type ?? (snapshot.flagSummary(forKey: flag)?.type == .boolean ? .boolean : .variant)
        let request = EvaluationRequest(flagKey: flag, entityID: entity, context: properties)
        let evaluator = Evaluator(snapshot: snapshot, namespace: client.namespace)
        if json {
            let line = JSONLinesEvaluator(evaluator: evaluator)
                .answer(kind == .boolean ? .boolean(request) : .variant(request))
            print(line)
            if line.hasPrefix("{\"status\":\"failure\"") { throw ExitCode(Status.evaluationFailed) }
            return
        }
        do {
            switch kind {
            case .variant:
                let result = try evaluator.variant(flagKey: flag, entityID: entity, context: properties)
                let variant = result.variantKey.isEmpty ? "(no variant)" : result.variantKey
                print("\(flag): \(variant)  [\(Self.describe(result.reason, result.segmentKeys))]")
                if let attachment = result.variantAttachment { print("attachment: \(attachment)") }
            case .boolean:
                let result = try evaluator.boolean(flagKey: flag, entityID: entity, context: properties)
                print("\(flag): \(result.isEnabled)  [\(Self.describe(result.reason, result.segmentKeys))]")
            }
        } catch {
            printError(error.message)
            throw ExitCode(Status.evaluationFailed)
        }
    }

    private static func describe(_ reason: EvaluationReason, _ segments: [String]) -> String {
        let name =
            switch reason {
            case .match: "matched"
            case .default: "default"
            case .flagDisabled: "flag disabled"
            case .unknown: "no match, no default variant"
            }
        return segments.isEmpty ? name : "\(name): segments \(segments.joined(separator: ", "))"
    }

    // MARK: Messages

    private func printError(_ message: String) {
        FileHandle.standardError.write(Data("flipt-offline eval: \(message)\n".utf8))
    }

    private func fail(_ message: String) -> Never {
        printError(message)
        Self.exit(withError: ExitCode(Status.evaluationFailed))
    }
}
