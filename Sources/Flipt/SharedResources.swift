import FliptStore
import FliptSync
import Foundation
import Logging

/// What the clients of one process share without being told: one HTTP transport per server and trust settings,
/// and one connection per cache file, so that an app reading five namespaces opens one connection pool and one
/// SQLite connection, not five.
///
/// Entries are weak: a transport or store lives as long as a client uses it and is released with the last one
/// (the transport then closes its connections, the store its file). A transport given in
/// ``ClientOptions/transport`` is the caller's and is never put here.
enum SharedResources {
    private struct TransportKey: Hashable {
        var scheme: String
        var host: String
        var port: Int?
        var tls: TLSOptions
    }

    private struct StoreKey: Hashable {
        var path: String
        var generationsKept: Int
    }

    /// A weak reference; the value is an `AnyObject` so that both kinds fit.
    private struct Weak {
        weak var value: AnyObject?
    }

    private static let transports = Locked<[TransportKey: Weak]>([:])
    private static let stores = Locked<[StoreKey: Weak]>([:])

    /// The transport of the clients of `configuration`'s server with its TLS options, made on first use.
    static func transport(for configuration: SyncConfiguration, logger: Logger) throws(SyncError) -> any HTTPTransport {
        let url = configuration.url
        let key = TransportKey(
            scheme: url.scheme?.lowercased() ?? "",
            host: url.host?.lowercased() ?? "",
            port: url.port,
            tls: configuration.tls
        )
        return try transports.withLock { (table) throws(SyncError) -> any HTTPTransport in
            if let shared = table[key]?.value as? any HTTPTransport { return shared }
            table = table.filter { $0.value.value != nil }
            let made = try SnapshotFetcher.defaultTransport(for: configuration, logger: logger)
            table[key] = Weak(value: made as AnyObject)
            return made
        }
    }

    /// The store of the cache file at `path` (compared after resolving symbolic links), opened on first use.
    static func store(path: String, options: SnapshotStore.Options) throws(StoreError) -> SnapshotStore {
        let key = StoreKey(
            path: URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path,
            generationsKept: options.generationsKept
        )
        return try stores.withLock { (table) throws(StoreError) -> SnapshotStore in
            if let shared = table[key]?.value as? SnapshotStore { return shared }
            table = table.filter { $0.value.value != nil }
            let opened = try SnapshotStore(path: path, options: options)
            table[key] = Weak(value: opened)
            return opened
        }
    }
}
