import FliptEngine
import FliptStore
import Foundation

/// The key most tests store under.
let testKey = SnapshotKey(
    url: URL(string: "http://127.0.0.1:8080")!,
    environment: "default",
    namespace: "default"
)

/// A valid v2 snapshot document for namespace `default` with `flags` boolean flags; `seed` varies the content.
func snapshotDocument(flags: Int = 3, seed: Int = 0, padding: Int = 0) -> Data {
    var parts: [String] = []
    for index in 0..<flags {
        parts.append(
            #"{"key":"flag_\#(index)","name":"Flag \#(index)","description":"\#(String(repeating: "x", count: padding))","#
                + #""enabled":\#(index % 2 == 0),"type":"BOOLEAN_FLAG_TYPE","rules":[],"rollouts":["#
                + #"{"type":"THRESHOLD_ROLLOUT_TYPE","rank":1,"threshold":{"percentage":\#((seed + index) % 100),"#
                + #""value":true}}]}"#
        )
    }
    let json = #"{"namespace":{"key":"default"},"flags":[\#(parts.joined(separator: ","))],"digest":"s\#(seed)"}"#
    return Data(json.utf8)
}

/// A snapshot the way the client saves one: only after the engine decoded and indexed it without error.
func validatedSnapshot(
    _ document: Data,
    etag: String? = nil,
    fetchedAt: Date = Date(),
    serverDate: Date? = nil,
    source: SnapshotSource = .network
) throws -> NewSnapshot {
    _ = try Snapshot(data: document)
    return NewSnapshot(document: document, etag: etag, fetchedAt: fetchedAt, serverDate: serverDate, source: source)
}

/// A time with whole milliseconds, as the store keeps them.
func millisecondDate(_ seconds: Double) -> Date {
    Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000)
}
