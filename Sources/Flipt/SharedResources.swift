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
///
/// The tables are arrays searched in order, not dictionaries: a process holds a handful of entries, and the first
/// use of a dictionary keyed by a type of this module makes the Swift runtime look up the key's `Hashable`
/// conformance by scanning every conformance record of the process (~0.25 ms per table of a cold boot here).
enum SharedResources {
    private struct TransportKey: Equatable {
        var scheme: String
        var host: String
        var port: Int?
        var tls: TLSOptions
    }

    private struct StoreKey: Equatable {
        var path: String
        var generationsKept: Int
    }

    /// A weak reference under its key; the value is an `AnyObject` so that both kinds fit.
    private struct Entry<Key> {
        var key: Key
        weak var value: AnyObject?
    }

    private static let transports = Locked<[Entry<TransportKey>]>([])
    private static let stores = Locked<[Entry<StoreKey>]>([])

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
            if let shared = table.first(where: { $0.key == key })?.value as? any HTTPTransport { return shared }
            table.removeAll { $0.value == nil || $0.key == key }
            let made = try SnapshotFetcher.defaultTransport(for: configuration, logger: logger)
            table.append(Entry(key: key, value: made))
            return made
        }
    }

    /// The store of the cache file at `path` (compared after resolving symbolic links), opened on first use.
    static func store(path: String, options: SnapshotStore.Options) throws(StoreError) -> SnapshotStore {
        let key = StoreKey(path: canonicalPath(path), generationsKept: options.generationsKept)
        return try stores.withLock { (table) throws(StoreError) -> SnapshotStore in
            if let shared = table.first(where: { $0.key == key })?.value as? SnapshotStore { return shared }
            table.removeAll { $0.value == nil || $0.key == key }
            let opened = try SnapshotStore(path: path, options: options)
            table.append(Entry(key: key, value: opened))
            return opened
        }
    }

    /// `path` made absolute with its symbolic links, `.` and `..` resolved (realpath(3)); for a file that does not
    /// exist yet, its directory's so resolved with the file name appended. Only compared within the process, so
    /// any form that is the same for the same file does (Foundation's `resolvingSymlinksInPath()` cost ~0.15 ms of
    /// a cold boot here).
    static func canonicalPath(_ path: String) -> String {
        func resolved(_ path: String) -> String? {
            guard let pointer = realpath(path, nil) else { return nil }
            defer { free(pointer) }
            return String(cString: pointer)
        }
        if let whole = resolved(path) { return whole }
        let slash = path.lastIndex(of: "/")
        let name = slash.map { path[path.index(after: $0)...] } ?? path[...]
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        guard let parent = resolved(directory) else { return path }
        return parent == "/" ? "/\(name)" : "\(parent)/\(name)"
    }
}
