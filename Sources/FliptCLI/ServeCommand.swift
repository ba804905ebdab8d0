import ArgumentParser
import Flipt
import FliptRelay
import FliptStore
import Foundation
import Logging

/// `flipt-offline serve`: answer Flipt's snapshot API from the cache, so that nearby devices and official Flipt
/// SDKs can use this machine as their Flipt server while the real one is out of reach.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the cached snapshots over Flipt's snapshot API, as a relay for nearby devices and SDKs.",
        discussion: """
            Answers, for every namespace the cache holds (last good snapshots only):

              GET /internal/v1/evaluation/snapshot/namespace/{namespace}         (what the official SDKs poll)
              GET /client/v2/environments/{env}/namespaces/{namespace}/snapshot
              GET /client/v2/environments/{env}/namespaces/{namespace}/stream    (streaming mode, v2)
              GET /health

            Snapshots carry an Etag (the one the upstream server sent, else the document's SHA-256); a request
            whose If-None-Match equals it gets 304 with no body. An unknown namespace gets 404 with Flipt's JSON
            error body. The environment is picked as Flipt does: the path's (E2/E3) or the environmentKey query
            parameter (E1) if the cache holds it, else X-Flipt-Environment, else --environment, else the only
            one the cache holds for that namespace. `reference` is accepted and ignored. A stream sends the
            current snapshot at once, then one line per change of the cache, with no heartbeats.

            The cache may be written by another process while serving: run `flipt-offline run` (or any app
            using the library) on the same --cache, and changes are served within about 250 ms. Or give --run
            to keep namespace --namespace fresh from --url in this process. When the cache holds a namespace
            from several servers or references, --url and --reference choose; otherwise the most recently
            confirmed entry is served and a warning names the others.

            --document FILE serves a snapshot document file as well (namespace from the document, environment
            --environment), where the cache holds no snapshot for that namespace. With --document and no --cache,
            no cache file is used.

            Point a client at it with url = http://HOST:PORT. Listen on 0.0.0.0:PORT to reach it from other
            devices (there is no TLS and no authentication: use it on networks you trust).

            Examples:
              flipt-offline serve --cache flags.sqlite3 --listen 0.0.0.0:8080
              flipt-offline run --cache flags.sqlite3 --url https://flipt.example.com &
              flipt-offline serve --cache flags.sqlite3 --run --url https://flipt.example.com --namespace mobile
              flipt-offline serve --document snapshot.json --listen 127.0.0.1:0 --log-level debug

            Logs go to standard error: a startup line (with the bound address) at info, one line per request
            at debug. SIGINT or SIGTERM ends open streams cleanly and exits with status 0.

            Exit status:
              0   stopped by SIGINT or SIGTERM
              1   the address cannot be listened on
              2   a --document is not a valid snapshot document
              3   a --document cannot be read
              30  the cache file cannot be used
              64  the command line or the options are invalid
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options (--url, --environment and --reference choose cache entries; --run uses all)")
    var client: ClientOptionGroup

    @Option(
        name: .long,
        help: ArgumentHelp("Where to listen: host:port, [ipv6]:port, or a port on 127.0.0.1; port 0 picks one.")
    )
    var listen = "127.0.0.1:8080"

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp("Also serve this snapshot document (repeatable).", valueName: "file")
    )
    var document: [String] = []

    @ArgumentParser.Flag(name: .long, help: "Keep --namespace fresh from --url while serving (as `run` does).")
    var run = false

    @Option(name: .long, help: "debug (one line per request), info, notice, warning or error.")
    var logLevel: LogLevel = .info

    @Option(name: .long, help: "The most connections served at once; more get 503.")
    var maxConnections = 1024

    /// The log levels offered on the command line.
    enum LogLevel: String, ExpressibleByArgument, CaseIterable {
        case debug, info, notice, warning, error

        var level: Logger.Level {
            switch self {
            case .debug: .debug
            case .info: .info
            case .notice: .notice
            case .warning: .warning
            case .error: .error
            }
        }
    }

    func validate() throws {
        guard ListenAddress(parsing: listen) != nil else {
            throw ValidationError("--listen \(listen) is not host:port, [ipv6]:port or a port number.")
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1.") }
        if run && client.url == nil {
            throw ValidationError("--run keeps the cache fresh from the upstream server: give it with --url.")
        }
        if run && cache.cache == nil && !document.isEmpty {
            throw ValidationError("--run writes to the cache: give --cache as well as --document.")
        }
    }

    func run() async throws {
        try await CommandFailure.reporting("serve") { try await serve() }
    }

    private func serve() async throws {
        var logger = Logger(label: "flipt-offline.serve", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = logLevel.level
        let documents = try document.map { try Self.loadDocument($0, environment: client.environment) }
        let usesCache = cache.cache != nil || document.isEmpty
        let catalog = SnapshotCatalog(defaultEnvironment: client.environment)
        var watcher: CacheWatcher?
        if usesCache {
            let store: SnapshotStore
            do throws(StoreError) {
                store = try SnapshotStore(path: cache.path)
            } catch {
                throw CommandFailure.cache(error, doing: "open the cache to serve it")
            }
            let selection = CacheWatcher.Selection(serverURL: client.url, reference: client.reference)
            let cacheWatcher = CacheWatcher(
                store: store,
                catalog: catalog,
                selection: selection,
                fixedSnapshots: documents,
                logger: logger
            )
            do throws(StoreError) {
                try cacheWatcher.refresh()
            } catch {
                throw CommandFailure.cache(error, doing: "read the cache to serve it")
            }
            watcher = cacheWatcher
        } else {
            catalog.replace(with: documents)
            for snapshot in documents {
                let place = "\(snapshot.environment)/\(snapshot.namespace)"
                logger.info("serving \(place): etag \(snapshot.etag), from \(snapshot.origin)")
            }
        }

        let signals = SignalWatch()
        defer { signals.cancel() }
        var upstream: FliptClient?
        if run {
            let options = try client.clientOptions(cachePath: cache.path)
            do {
                upstream = try FliptClient(namespace: client.namespace, options: options)
            } catch {
                let status = error.underlying is StoreError ? ExitStatus.cache : ExitStatus.usage
                throw CommandFailure(status, error.message)
            }
        }
        let server = RelayServer(
            configuration: RelayServer.Configuration(
                address: ListenAddress(parsing: listen)!,
                maxConnections: maxConnections,
                logger: logger
            ),
            catalog: catalog
        )
        let bound: ListenAddress
        do throws(RelaySocketError) {
            bound = try server.start()
        } catch {
            upstream?.close()
            throw CommandFailure(ExitStatus.failed, error.description)
        }
        watcher?.start()
        let served = catalog.snapshots.map { "\($0.environment)/\($0.namespace)" }.joined(separator: ", ")
        let sources = (usesCache ? ["cache \(cache.path)"] : []) + document.map { "document \($0)" }
        let what = "\(served.isEmpty ? "nothing yet" : served) from \(sources.joined(separator: " and "))"
        logger.info("listening on \(bound.url) (Flipt snapshot API); serving \(what)")
        if let upstream {
            logger.info("keeping \(client.namespace) fresh from \(upstream.options.url) in the background (--run)")
        }
        if served.isEmpty {
            logger.warning(
                "the cache holds no snapshot yet: requests get 404 until `flipt-offline sync` or `run` stores one"
            )
        }

        let number = await signals.next()
        logger.info("\(number.map(SignalWatch.name(of:)) ?? "end of signals"): stopping")
        watcher?.stop()
        server.stop()
        await upstream?.shutdown()
        let statistics = server.statistics
        let counts = "\(statistics.notModified) not modified, \(statistics.errors) errors"
        logger.info("stopped after \(statistics.requests) requests (\(counts))")
    }

    /// Reads and validates a snapshot document; the namespace comes from the document itself.
    static func loadDocument(_ path: String, environment: String) throws -> ServedSnapshot {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(ExitStatus.unreadable, "cannot read the document \(path): no such file, or denied")
        }
        let snapshot: Snapshot
        do {
            snapshot = try Snapshot(document: data)
        } catch {
            throw CommandFailure(ExitStatus.invalidDocument, "the document \(path) is not a valid snapshot: \(error)")
        }
        return ServedSnapshot(
            namespace: snapshot.namespaceKey,
            environment: environment,
            document: Array(data),
            origin: "file \(path)"
        )
    }
}
