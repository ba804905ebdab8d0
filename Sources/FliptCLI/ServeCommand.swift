import ArgumentParser
import Flipt
import FliptRelay
import FliptStore
import Foundation
import Logging
import ServiceLifecycle

/// `flipt-offline serve`: answer Flipt's snapshot API from the cache, so that nearby devices and official Flipt
/// SDKs can use this machine as their Flipt server while the real one is out of reach.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the cached snapshots over Flipt's snapshot API, as a relay for nearby devices and SDKs.",
        discussion: """
            Answers, for every namespace the cache holds (last good snapshots):

              GET /internal/v1/evaluation/snapshot/namespace/{ns}   (SDKs poll it)
              GET /client/v2/environments/{env}/namespaces/{ns}/snapshot
              GET /client/v2/environments/{env}/namespaces/{ns}/stream  (v2)
              GET /health

            A snapshot carries an Etag: the upstream server's, else the
            document's SHA-256. If-None-Match equal to it gets 304, no body.
            An unknown namespace gets 404 with Flipt's JSON error body. The
            environment is chosen as Flipt does: the path's (or the
            environmentKey query parameter) if the cache holds it, else
            X-Flipt-Environment, else --environment, else the only one the
            cache holds for the namespace. `reference` is accepted, ignored.
            A stream sends the current snapshot at once, then one line per
            change of the cache, pushed to every open stream; no heartbeats
            (TCP keepalive notices vanished clients).

            Limits: a request must be complete within 10 s of its first
            byte (else 408); request lines over 8 KiB get 414, heads over
            16 KiB 431; a kept-alive connection idle for 75 s is closed;
            past --max-connections a connection gets 503 with Retry-After.
            The open-file limit is raised to its hard limit at start and
            the connection limit is lowered to fit inside it (the start-up
            log says so). Snapshot answers say Cache-Control: no-cache and
            Vary: X-Flipt-Environment, so a caching proxy revalidates.
            Clients that send Accept-Encoding: gzip get gzip snapshots and
            streams, with the ETag suffixed -gzip.

            Another process may write the cache while it is served: run
            `flipt-offline run` (or an app using the library) on the same
            --cache, and changes are served within milliseconds. Or give
            --run to keep --namespace fresh from --url in this process
            (the client options above apply to it). When the cache holds a
            namespace from several servers or references, --url and
            --reference choose; otherwise the most recently confirmed entry
            is served and a warning names the others.

            --document FILE also serves a snapshot document file (namespace
            from the document, environment --environment) where the cache
            has none for that namespace. With --document and no --cache, no
            cache file is used.

            Clients use url = http://HOST:PORT. Listen on 0.0.0.0:PORT to be
            reachable from other devices; there is no TLS and no
            authentication, so do that on networks you trust only.

            Examples:
              flipt-offline run --cache f.sqlite3 --url https://flipt.example &
              flipt-offline serve --cache f.sqlite3 --listen 0.0.0.0:8080
              flipt-offline serve --cache f.sqlite3 --run --url https://flipt.example
              flipt-offline serve --document snapshot.json --listen 127.0.0.1:0

            Logs go to standard error: a startup line with the bound address
            at info, one line per request at debug. SIGINT or SIGTERM ends
            open streams cleanly and exits with status 0.

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

    @OptionGroup(title: "Client options")
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

    @Option(
        name: .long,
        help: "The most connections served at once; more get 503 (lowered to fit the open-file limit)."
    )
    var maxConnections = 10_000

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
            bound = try await server.start()
        } catch {
            upstream?.close()
            throw CommandFailure(ExitStatus.failed, error.description)
        }
        watcher?.start()
        let served = catalog.snapshots.map { "\($0.environment)/\($0.namespace)" }.joined(separator: ", ")
        let sources = (usesCache ? ["cache \(cache.path)"] : []) + document.map { "document \($0)" }
        let what = "\(served.isEmpty ? "nothing yet" : served) from \(sources.joined(separator: " and "))"
        logger.info(
            "listening on \(bound.url) (Flipt snapshot API, up to \(server.connectionLimit) connections); serving \(what)"
        )
        if let upstream {
            logger.info("keeping \(client.namespace) fresh from \(upstream.options.url) in the background (--run)")
        }
        if served.isEmpty {
            logger.warning(
                "the cache holds no snapshot yet: requests get 404 until `flipt-offline sync` or `run` stores one"
            )
        }

        // The server runs as a service; the signals are still SignalWatch's, and end it by a graceful shutdown.
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [server], gracefulShutdownSignals: [], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let number = await signals.next()
            logger.info("\(number.map(SignalWatch.name(of:)) ?? "end of signals"): stopping")
            watcher?.stop()
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
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
