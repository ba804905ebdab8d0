import ArgumentParser
import FliptEngine
import FliptStore
import Foundation

/// The two portable forms of a snapshot.
enum SnapshotFormat: String, ExpressibleByArgument, CaseIterable {
    /// Standard base64 of the document, as `FliptClient.getSnapshot()` returns and `ClientOptions.snapshot` takes.
    case string
    /// The snapshot document itself (Flipt's JSON wire format).
    case json
}

/// `flipt-offline cache export`: the last good snapshot, portable.
struct CacheExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the last good snapshot as a portable snapshot string (or the JSON document).",
        discussion: """
            The default format is the snapshot string: standard base64 of the snapshot document, the same as \
            FliptClient.getSnapshot() returns. Pass it to ClientOptions.snapshot to seed a client, or to \
            `flipt-offline cache import` on another machine. --format json writes the document itself.

            Examples:
              flipt-offline cache export > snapshot.txt
              flipt-offline cache export --namespace shop --format json --output shop.json
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they select the entry)")
    var client: ClientOptionGroup

    @Option(name: .long, help: "string (base64 of the document) or json (the document).")
    var format: SnapshotFormat = .string

    @Option(name: .long, help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func run() throws {
        try CommandFailure.reporting("cache export") {
            let store = try cache.openForReading()
            let key = try client.key(in: store)
            let stored = try store.requireLastGood(for: key)
            let bytes: Data =
                switch format {
                case .string: Data((SnapshotString.encode(stored.document) + "\n").utf8)
                case .json: stored.document
                }
            guard let output else {
                FileHandle.standardOutput.write(bytes)
                return
            }
            do {
                try bytes.write(to: URL(fileURLWithPath: output), options: .atomic)
            } catch {
                throw CommandFailure(
                    ExitStatus.unreadable,
                    "cannot write \(output) (\(error.localizedDescription)); check the path and permissions"
                )
            }
            Terminal.note(
                "exported generation \(stored.generation) of \(key) (etag \(Describe.etag(stored.etag)), "
                    + "\(Describe.size(stored.size))) to \(output) as \(format.rawValue)"
            )
        }
    }
}

/// `flipt-offline cache import`: store a snapshot an operator supplies.
struct CacheImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Validate a snapshot string or JSON document and store it as the entry's last good snapshot.",
        discussion: """
            Reads a snapshot string (from `cache export` or FliptClient.getSnapshot()) or a snapshot document \
            (JSON), from FILE or standard input. The engine decodes it first and its namespace must equal \
            --namespace; anything invalid is refused with the reason and the cache is left untouched. A valid \
            snapshot is stored as the next generation with source "import" and no ETag, so the next sync \
            fetches unconditionally. The entry is the one --url (with --namespace, --environment, --reference) \
            names; without --url, the cache must already hold that namespace from exactly one server.

            Examples:
              flipt-offline cache import snapshot.txt --url https://flipt.example.com
              curl -s "$FLIPT/internal/v1/evaluation/snapshot/namespace/default" |
                flipt-offline cache import - --url "$FLIPT"
            """
    )

    @Argument(help: ArgumentHelp("The snapshot string or document, or - for standard input.", valueName: "file"))
    var input: String = "-"

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (they name the entry)")
    var client: ClientOptionGroup

    @Flag(name: .long, help: "Print one JSON object instead of a line.")
    var json = false

    func run() throws {
        try CommandFailure.reporting("cache import") {
            let text = try readInput()
            let document = try Self.document(from: text)
            let snapshot: Snapshot
            do throws(SnapshotRejection) {
                snapshot = try Snapshot(document: document, namespace: client.namespace)
            } catch {
                switch error {
                case .undecodable:
                    throw CommandFailure(ExitStatus.invalidDocument, "the input is \(error); nothing was imported")
                case .otherNamespace(let found):
                    throw CommandFailure(
                        ExitStatus.invalidDocument,
                        "the input is \(error), not \"\(client.namespace)\"; pass --namespace \(found) to import it; "
                            + "nothing was imported"
                    )
                }
            }
            if client.url == nil && !FileManager.default.fileExists(atPath: cache.path) {
                throw CommandFailure(
                    ExitStatus.noEntry,
                    "there is no cache file at \(cache.path) yet; pass --url to name the server this snapshot "
                        + "belongs to; nothing was imported"
                )
            }
            let store = try cache.openForWriting()
            let key: SnapshotKey
            do {
                key = try client.key(in: store)
            } catch let failure as CommandFailure where failure.status == ExitStatus.noEntry {
                throw CommandFailure(
                    ExitStatus.noEntry,
                    "the cache holds no entry for namespace \(client.namespace) yet; pass --url to name the server "
                        + "this snapshot belongs to; nothing was imported"
                )
            }
            let metadata: SnapshotMetadata
            do throws(StoreError) {
                metadata = try store.save(
                    NewSnapshot(document: Data(document), etag: nil, fetchedAt: Date(), source: .imported),
                    for: key
                )
            } catch {
                throw CommandFailure.cache(error, doing: "store the imported snapshot (nothing was imported)")
            }
            let now = Date()
            if json {
                var members = key.jsonMembers
                members.append(("last_good", .object(metadata.jsonMembers(flags: snapshot.flagCount, now: now))))
                Terminal.line(JSONValue.object(members).text)
            } else {
                Terminal.line(
                    "imported: generation \(metadata.generation) is now the last good snapshot of \(key) "
                        + "(\(snapshot.flagCount) flags, \(Describe.size(metadata.size)), source import)"
                )
            }
        }
    }

    private func readInput() throws -> Data {
        if input == "-" {
            // `readToEnd()` throws where `readDataToEndOfFile()` would stop the process on a read error.
            do {
                return try FileHandle.standardInput.readToEnd() ?? Data()
            } catch {
                throw CommandFailure(ExitStatus.unreadable, "cannot read the standard input: \(error)")
            }
        }
        guard let data = FileManager.default.contents(atPath: input) else {
            throw CommandFailure(ExitStatus.unreadable, "cannot read \(input): \(FileReadFailure.reason(path: input))")
        }
        return data
    }

    /// The document inside a snapshot string, or the document itself when the input is JSON.
    static func document(from input: Data) throws -> [UInt8] {
        do {
            return try SnapshotString.document(from: input)
        } catch .empty {
            throw CommandFailure(ExitStatus.invalidDocument, "the input is empty; nothing was imported")
        } catch .notBase64 {
            throw CommandFailure(
                ExitStatus.invalidDocument,
                "the input is neither a snapshot string (base64) nor a JSON document; pass the output of "
                    + "`flipt-offline cache export` or a snapshot document; nothing was imported"
            )
        }
    }
}
