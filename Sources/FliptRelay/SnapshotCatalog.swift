import FliptStore
import Foundation
import Synchronization

/// One snapshot document the relay serves, for one namespace in one environment.
public struct ServedSnapshot: Sendable {
    /// The namespace key.
    public let namespace: String
    /// The environment key.
    public let environment: String
    /// The `Etag` sent with it; `If-None-Match` must equal it exactly for a `304`.
    public let etag: String
    /// The document, byte for byte as stored.
    public let document: [UInt8]
    /// The stream line for it, `{"result":<document>}\n`, with the document's line breaks removed.
    public let streamMessage: [UInt8]
    /// Where it comes from, for logs (`cache http://flipt:8080 default/ns`, `file example.json`).
    public let origin: String
    /// When the upstream server last sent or confirmed it, for the `Age` header; nil when unknown.
    public let lastConfirmedAt: Date?
    /// An identity of the content: equal documents with equal ETags have equal versions.
    let version: String

    /// Creates a served snapshot; `etag` defaults to the document's SHA-256 (lowercase hex).
    public init(
        namespace: String,
        environment: String,
        document: [UInt8],
        etag: String? = nil,
        origin: String,
        lastConfirmedAt: Date? = nil,
        contentHash: String? = nil
    ) {
        let hash = contentHash ?? SHA256.hex(document)
        self.namespace = namespace
        self.environment = environment
        self.etag = etag.flatMap { $0.isEmpty ? nil : $0 } ?? hash
        self.document = document
        // JSON strings cannot hold raw line breaks, so every CR or LF byte is whitespace between tokens:
        // dropping them keeps the document intact and puts it on one line.
        let compact =
            document.contains(10) || document.contains(13) ? document.filter { $0 != 10 && $0 != 13 } : document
        self.streamMessage = Array("{\"result\":".utf8) + compact + Array("}\n".utf8)
        self.origin = origin
        self.lastConfirmedAt = lastConfirmedAt
        self.version = self.etag + " " + hash
    }

    /// The same snapshot with another confirmation time (the document is shared, not copied).
    func confirmed(at date: Date?) -> ServedSnapshot {
        ServedSnapshot(copying: self, lastConfirmedAt: date)
    }

    private init(copying other: ServedSnapshot, lastConfirmedAt: Date?) {
        namespace = other.namespace
        environment = other.environment
        etag = other.etag
        document = other.document
        streamMessage = other.streamMessage
        origin = other.origin
        self.lastConfirmedAt = lastConfirmedAt
        version = other.version
    }
}

/// The snapshots the relay serves, by namespace and environment, replaced as a whole when the cache changes.
///
/// Readers work on a ``View``, an immutable copy of the table: a connection takes one under the lock only when
/// ``generation`` (an atomic counter, read without locking) says the table changed, so that hundreds of connection
/// threads never queue on a lock to answer a request.
public final class SnapshotCatalog: Sendable {
    /// An immutable table of served snapshots, and the generation it belongs to.
    public struct View: Sendable {
        /// The catalog generation this view was taken at.
        public let generation: UInt64
        /// The environment used when a request names none that the view holds.
        public let defaultEnvironment: String
        let table: [String: [String: ServedSnapshot]]

        /// The snapshot of `namespace` for the first of `environments` that holds it; else the default
        /// environment's, else the only one; nil when the namespace is unknown or the choice is ambiguous.
        public func snapshot(namespace: String, environments: [String?]) -> ServedSnapshot? {
            guard let byEnvironment = table[namespace] else { return nil }
            for case let environment? in environments {
                if let snapshot = byEnvironment[environment] { return snapshot }
            }
            if let snapshot = byEnvironment[defaultEnvironment] { return snapshot }
            return byEnvironment.count == 1 ? byEnvironment.first?.value : nil
        }

        /// The environments that hold `namespace`, sorted.
        public func environments(of namespace: String) -> [String] {
            table[namespace].map { $0.keys.sorted() } ?? []
        }

        /// Every served snapshot, sorted by namespace then environment.
        public var snapshots: [ServedSnapshot] {
            table.values.flatMap(\.values).sorted {
                ($0.namespace, $0.environment) < ($1.namespace, $1.environment)
            }
        }
    }

    /// The environment used when a request names none that the catalog holds (Flipt's default environment).
    public let defaultEnvironment: String
    private let current: Mutex<View>
    private let generationCounter = Atomic<UInt64>(0)

    /// Creates a catalog holding `snapshots`.
    public init(defaultEnvironment: String = "default", snapshots: [ServedSnapshot] = []) {
        self.defaultEnvironment = defaultEnvironment
        current = Mutex(View(generation: 0, defaultEnvironment: defaultEnvironment, table: [:]))
        replace(with: snapshots)
    }

    /// A number that changes whenever a served document or ETag changes; reading it takes no lock.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// The current table.
    public var view: View { current.withLock { $0 } }

    /// Every served snapshot, sorted by namespace then environment.
    public var snapshots: [ServedSnapshot] { view.snapshots }

    /// Replaces the whole table; returns whether a document or ETag changed (confirmation times do not count).
    /// A later snapshot for the same namespace and environment replaces an earlier one.
    @discardableResult
    public func replace(with snapshots: [ServedSnapshot]) -> Bool {
        var table: [String: [String: ServedSnapshot]] = [:]
        for snapshot in snapshots { table[snapshot.namespace, default: [:]][snapshot.environment] = snapshot }
        return current.withLock { view in
            let changed =
                view.table.mapValues { $0.mapValues(\.version) } != table.mapValues { $0.mapValues(\.version) }
            let generation = changed ? view.generation &+ 1 : view.generation
            view = View(generation: generation, defaultEnvironment: defaultEnvironment, table: table)
            if changed { generationCounter.store(generation, ordering: .releasing) }
            return changed
        }
    }

    /// The snapshot of `namespace` for the first of `environments` that the catalog holds it in; else the
    /// default environment's, else the only one; nil when the namespace is unknown or the choice is ambiguous.
    public func snapshot(namespace: String, environments: [String?]) -> ServedSnapshot? {
        view.snapshot(namespace: namespace, environments: environments)
    }

    /// The environments that hold `namespace`, sorted.
    public func environments(of namespace: String) -> [String] {
        view.environments(of: namespace)
    }
}
