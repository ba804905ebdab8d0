import FliptEngine
import Foundation

/// A snapshot the server sent and the engine accepted, with what the store needs to persist it.
package struct FetchedSnapshot: Sendable {
    /// The decoded, indexed snapshot, ready to evaluate.
    package var snapshot: Snapshot
    /// The document bytes exactly as received (for a stream message, the `result` member).
    package var document: [UInt8]
    /// The ETag to send back as `If-None-Match`: the response's `Etag` header verbatim, or for a stream message
    /// its `digest`; nil when the server gave none.
    package var etag: String?
    /// The server's `Date` header, if it sent a parseable one.
    package var serverDate: Date?
    /// The HTTP status of the response that carried it (200).
    package var status: Int
    /// Where it came from.
    package var source: Source

    /// How a snapshot arrived.
    package enum Source: Sendable, Hashable {
        /// A response of the snapshot endpoint.
        case snapshotEndpoint
        /// A message on the stream.
        case stream
    }

    /// Creates a fetched snapshot.
    package init(
        snapshot: Snapshot,
        document: [UInt8],
        etag: String?,
        serverDate: Date?,
        status: Int,
        source: Source
    ) {
        self.snapshot = snapshot
        self.document = document
        self.etag = etag
        self.serverDate = serverDate
        self.status = status
        self.source = source
    }

    /// Decodes a document with the engine and checks that it is the requested namespace.
    ///
    /// - Throws: a ``SyncError/Kind/badDocument`` error; nothing that fails here may be used.
    package static func validate(
        _ document: [UInt8],
        namespace: String,
        url: String?
    ) throws(SyncError) -> Snapshot {
        do throws(SnapshotRejection) {
            return try Snapshot(document: document, namespace: namespace)
        } catch {
            throw SyncError(
                .badDocument,
                Self.message(for: error, namespace: namespace),
                url: url
            )
        }
    }

    private static func message(for rejection: SnapshotRejection, namespace: String) -> String {
        switch rejection {
        case .undecodable(let error):
            "The server sent a snapshot document that is not valid (\(error)). It was not used; the last good "
                + "snapshot stays in use. Check the server's version and the namespace's flag data."
        case .otherNamespace(let found):
            "The server sent a snapshot of namespace \"\(found)\" instead of \"\(namespace)\". "
                + "It was not used. Check the namespace setting and any proxy between the client and Flipt."
        }
    }
}

/// What one conditional fetch of the snapshot endpoint ended with.
package enum FetchOutcome: Sendable {
    /// The server sent a new, valid snapshot.
    case modified(FetchedSnapshot)
    /// The server answered `304 Not Modified`: the snapshot described by this ETag is current.
    case notModified(etag: String)
}
