import FliptStore
import Foundation
import NIOCore
import Synchronization

/// One snapshot document the relay serves, for one namespace in one environment.
package struct ServedSnapshot: Sendable {
    /// The namespace key.
    package let namespace: String
    /// The environment key.
    package let environment: String
    /// The `Etag` sent with it; `If-None-Match` must equal it exactly for a `304`.
    package let etag: String
    /// The document, byte for byte as stored (a copy of ``documentBuffer``).
    package var document: [UInt8] { Array(documentBuffer.readableBytesView) }
    /// The stream line for it, `{"result":<document>}\n`, with the document's line breaks removed (a copy of
    /// ``streamMessageBuffer``).
    package var streamMessage: [UInt8] { Array(streamMessageBuffer.readableBytesView) }
    /// The document as it is written to connections: every answer shares these bytes, none copies them.
    package let documentBuffer: ByteBuffer
    /// The stream line as it is written to connections, shared like ``documentBuffer``.
    package let streamMessageBuffer: ByteBuffer
    /// The size of the document in bytes.
    package var documentSize: Int { documentBuffer.readableBytes }
    /// Where it comes from, for logs (`cache http://flipt:8080 default/ns`, `file example.json`).
    package let origin: String
    /// When the upstream server last sent or confirmed it, for the `Age` header; nil when unknown.
    package let lastConfirmedAt: Date?
    /// An identity of the content: equal documents with equal ETags have equal versions.
    let version: String
    /// The `Etag` sent with the gzip form of the document (``etag`` with `-gzip` inside its quotes).
    let gzipETag: String
    /// The gzip forms of the document and of the stream message, compressed once and shared.
    let gzip: GzipForms
    /// The header fields of its answers, encoded once and shared.
    let headerFields: SnapshotHeaderFields
    /// The document and its gzip form in files, for `sendfile(2)`, made when first asked for.
    let bodyFiles: BodyFiles

    /// What the stream message puts before and after the document.
    static let messagePrefix = "{\"result\":"
    static let messageSuffix = "}\n"

    /// Creates a served snapshot; `etag` defaults to the document's SHA-256 (lowercase hex).
    package init(
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
        self.documentBuffer = ByteBuffer(bytes: document)
        // JSON strings cannot hold raw line breaks, so every CR or LF byte is whitespace between tokens:
        // dropping them keeps the document intact and puts it on one line.
        var message = ByteBuffer()
        message.reserveCapacity(document.count + 12)
        message.writeString(Self.messagePrefix)
        if document.contains(10) || document.contains(13) {
            message.writeBytes(document.lazy.filter { $0 != 10 && $0 != 13 })
        } else {
            message.writeBytes(document)
        }
        message.writeString(Self.messageSuffix)
        self.streamMessageBuffer = message
        self.origin = origin
        self.lastConfirmedAt = lastConfirmedAt
        self.version = self.etag + " " + hash
        self.gzipETag = GzipETag.of(self.etag)
        self.gzip = GzipForms(document: documentBuffer, message: message)
        self.headerFields = SnapshotHeaderFields(etag: self.etag, gzipETag: gzipETag)
        self.bodyFiles = BodyFiles()
    }

    /// Compresses the gzip forms (for clients that accept gzip) now, on the caller's thread, unless that was
    /// done before. Otherwise a large document is compressed in the background when a client first asks for
    /// it, and answered uncompressed until then.
    package func prepareGzip() {
        gzip.compressNow()
    }

    /// The same snapshot with another confirmation time (the document is shared, not copied).
    func confirmed(at date: Date?) -> ServedSnapshot {
        ServedSnapshot(copying: self, lastConfirmedAt: date)
    }

    private init(copying other: ServedSnapshot, lastConfirmedAt: Date?) {
        namespace = other.namespace
        environment = other.environment
        etag = other.etag
        documentBuffer = other.documentBuffer
        streamMessageBuffer = other.streamMessageBuffer
        origin = other.origin
        self.lastConfirmedAt = lastConfirmedAt
        version = other.version
        gzipETag = other.gzipETag
        gzip = other.gzip
        headerFields = other.headerFields
        bodyFiles = other.bodyFiles
    }
}

/// The snapshots the relay serves, by namespace and environment, replaced as a whole when the cache changes.
///
/// Readers work on a ``View``, an immutable copy of the table taken under a short lock. Open streams do not poll:
/// they ``subscribe(namespace:_:)`` and are called once for each ``replace(with:)`` that changes their
/// namespace, whatever the number of streams.
package final class SnapshotCatalog: Sendable {
    /// An immutable table of served snapshots, and the generation it belongs to.
    package struct View: Sendable {
        /// The catalog generation this view was taken at; a later view has a larger one.
        package let generation: UInt64
        /// The environment used when a request names none that the view holds.
        package let defaultEnvironment: String
        let table: [String: [String: ServedSnapshot]]

        /// The snapshot of `namespace` for the first of `environments` that holds it; else the default
        /// environment's, else the only one; nil when the namespace is unknown or the choice is ambiguous.
        package func snapshot(namespace: String, environments: [String?]) -> ServedSnapshot? {
            guard let byEnvironment = table[namespace] else { return nil }
            for case let environment? in environments {
                if let snapshot = byEnvironment[environment] { return snapshot }
            }
            if let snapshot = byEnvironment[defaultEnvironment] { return snapshot }
            return byEnvironment.count == 1 ? byEnvironment.first?.value : nil
        }

        /// The environments that hold `namespace`, sorted.
        package func environments(of namespace: String) -> [String] {
            table[namespace].map { $0.keys.sorted() } ?? []
        }

        /// Every served snapshot, sorted by namespace then environment.
        package var snapshots: [ServedSnapshot] {
            table.values.flatMap(\.values).sorted {
                ($0.namespace, $0.environment) < ($1.namespace, $1.environment)
            }
        }
    }

    /// A registration made by ``subscribe(namespace:_:)``; ``cancel()`` ends it (so does releasing it).
    package final class Subscription: Sendable {
        private let catalog: SnapshotCatalog
        private let namespace: String
        private let id: UInt64

        fileprivate init(catalog: SnapshotCatalog, namespace: String, id: UInt64) {
            self.catalog = catalog
            self.namespace = namespace
            self.id = id
        }

        /// Stops the calls; idempotent. A call already on its way may still arrive.
        package func cancel() {
            catalog.unsubscribe(namespace: namespace, id: id)
        }

        deinit {
            catalog.unsubscribe(namespace: namespace, id: id)
        }
    }

    /// A function called with the new view when the snapshots of a namespace change.
    package typealias ChangeHandler = @Sendable (View) -> Void

    private struct State {
        var view: View
        var subscribers: [String: [UInt64: ChangeHandler]] = [:]
        var nextSubscriberID: UInt64 = 0
        var subscriberCount = 0
    }

    /// The environment used when a request names none that the catalog holds (Flipt's default environment).
    package let defaultEnvironment: String
    private let state: Mutex<State>
    private let generationCounter = Atomic<UInt64>(0)

    /// Creates a catalog holding `snapshots`.
    package init(defaultEnvironment: String = "default", snapshots: [ServedSnapshot] = []) {
        self.defaultEnvironment = defaultEnvironment
        state = Mutex(State(view: View(generation: 0, defaultEnvironment: defaultEnvironment, table: [:])))
        replace(with: snapshots)
    }

    /// A number that changes whenever a served document or ETag changes; reading it takes no lock.
    package var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// The current table.
    package var view: View { state.withLock { $0.view } }

    /// Every served snapshot, sorted by namespace then environment.
    package var snapshots: [ServedSnapshot] { view.snapshots }

    /// How many subscriptions are registered now.
    package var subscriberCount: Int { state.withLock { $0.subscriberCount } }

    /// Calls `onChange` with the new view after each ``replace(with:)`` that changes a document or ETag of
    /// `namespace` (in any environment), including its first appearance, until the subscription is cancelled.
    ///
    /// Calls are made on the thread that replaced the table, after its lock is released, so they must be quick
    /// (hop to where the work is done). Two calls may overtake each other: compare ``View/generation``.
    package func subscribe(namespace: String, _ onChange: @escaping ChangeHandler) -> Subscription {
        let id = state.withLock { state in
            state.nextSubscriberID += 1
            state.subscribers[namespace, default: [:]][state.nextSubscriberID] = onChange
            state.subscriberCount += 1
            return state.nextSubscriberID
        }
        return Subscription(catalog: self, namespace: namespace, id: id)
    }

    fileprivate func unsubscribe(namespace: String, id: UInt64) {
        state.withLock { state in
            guard state.subscribers[namespace]?.removeValue(forKey: id) != nil else { return }
            state.subscriberCount -= 1
            if state.subscribers[namespace]?.isEmpty == true { state.subscribers[namespace] = nil }
        }
    }

    /// Replaces the whole table; returns whether a document or ETag changed (confirmation times do not count).
    /// A later snapshot for the same namespace and environment replaces an earlier one. The subscribers of each
    /// namespace that changed are called once, with the new view.
    @discardableResult
    package func replace(with snapshots: [ServedSnapshot]) -> Bool {
        var table: [String: [String: ServedSnapshot]] = [:]
        for snapshot in snapshots { table[snapshot.namespace, default: [:]][snapshot.environment] = snapshot }
        let (view, changed, notified): (View, Bool, [ChangeHandler]) = state.withLock { state in
            let old = state.view.table
            let changedNamespaces = Set(old.keys).union(table.keys).filter { namespace in
                old[namespace]?.mapValues(\.version) != table[namespace]?.mapValues(\.version)
            }
            let generation = changedNamespaces.isEmpty ? state.view.generation : state.view.generation &+ 1
            state.view = View(generation: generation, defaultEnvironment: defaultEnvironment, table: table)
            if !changedNamespaces.isEmpty { generationCounter.store(generation, ordering: .releasing) }
            let handlers = changedNamespaces.flatMap { state.subscribers[$0].map { Array($0.values) } ?? [] }
            return (state.view, !changedNamespaces.isEmpty, handlers)
        }
        for handler in notified { handler(view) }
        return changed
    }
    /// The snapshot of `namespace` for the first of `environments` that the catalog holds it in; else the
    /// default environment's, else the only one; nil when the namespace is unknown or the choice is ambiguous.
    package func snapshot(namespace: String, environments: [String?]) -> ServedSnapshot? {
        view.snapshot(namespace: namespace, environments: environments)
    }

    /// The environments that hold `namespace`, sorted.
    package func environments(of namespace: String) -> [String] {
        view.environments(of: namespace)
    }
}
