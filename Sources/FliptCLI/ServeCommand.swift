import ArgumentParser
import Flipt
import FliptEngine
import FliptRelay
import FliptStore
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

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
            Vary: X-Flipt-Environment, Accept-Encoding (with
            --client-tokens: private, no-cache, and Vary names
            Authorization too), so a caching proxy revalidates and never
            hands one client's answer to another; streams say no-store and
            X-Accel-Buffering: no. Clients that send Accept-Encoding: gzip
            get gzip snapshots and streams, with the ETag suffixed -gzip.

            Another process may write the cache while it is served: run
            `flipt-offline run` (or an app using the library) on the same
            --cache, and changes are served within milliseconds. Or give
            --run to keep --namespace fresh from --url in this process
            (the client options above apply to it); --namespace a,b,c
            keeps several namespaces fresh over one HTTP client (one
            connection pool; each stream has its own connection). A
            namespace the server does not have is logged as a warning and
            the others are still kept fresh. When the cache holds a
            namespace from several servers or references, --url and
            --reference choose; otherwise the most recently confirmed entry
            is served and a warning names the others.

            --document FILE also serves a snapshot document file (namespace
            from the document, environment --environment) where the cache
            has none for that namespace. With --document and no --cache, no
            cache file is used.

            Clients use url = http://HOST:PORT, or https://HOST:PORT with
            --tls-cert and --tls-key (PEM: the server certificate first,
            then intermediates; an unencrypted key; TLS 1.2 or later).
            --client-ca PEM requires every client to present a certificate
            signed by one of its CAs. --client-tokens FILE requires every
            snapshot and stream request to carry Authorization: Bearer TOKEN
            (as Flipt SDKs send a client token); /health stays open. The
            file has one token a line, or sha256:HEX of it, optionally
            followed by the namespaces it may read (none: all):

              # tablets on the shop floor
              3f9c2a7e51b84d06a1e3c5f7d9b2a4c6 production
              sha256:9f86d081884c7d65...15b0f00a08 staging, qa

            No or an unknown token gets 401, a namespace the token may not
            read 403. Tokens are compared in constant time and never logged.
            Both --client-ca and --client-tokens may be given: both apply.

            Secure by default: listening on an address other than loopback
            (127.0.0.0/8, ::1, localhost) needs --client-tokens or
            --client-ca; --allow-anonymous lets anyone who can reach the port
            read every namespace instead.

            SIGHUP re-reads the TLS files and the tokens file: new
            connections and requests use them, open connections and streams
            stay. A file that cannot be used is logged (naming it) and the
            ones loaded before stay in use.

            Metrics: --metrics-listen HOST:PORT answers GET /metrics there
            in Prometheus's text format (404 for other paths): requests by
            route and status (flipt_relay_requests_total; the 304 share is
            status="304" over the snapshot routes), body bytes sent, open
            connections and streams, the age of each served snapshot
            (flipt_relay_snapshot_age_seconds) and, with --run, the
            upstream fetches by result and status (flipt_sync_fetches_total).
            An address other than loopback needs --allow-anonymous: anyone
            who reaches it reads the metrics, namespace names included.

            Examples:
              flipt-offline run --cache f.sqlite3 --url https://flipt.example &
              flipt-offline serve --cache f.sqlite3 --listen 0.0.0.0:8443 \\
                --tls-cert chain.pem --tls-key key.pem --client-tokens tokens.txt
              flipt-offline serve --cache f.sqlite3 --run --url https://flipt.example
              flipt-offline serve --cache f.sqlite3 --run --url https://flipt.example \\
                  --namespace web,mobile,backend --metrics-listen 127.0.0.1:9464
              flipt-offline serve --document snapshot.json --listen 127.0.0.1:0

            Logs go to standard error: a startup line with the bound address
            and what clients must present at info, one line per request at
            debug. SIGINT or SIGTERM ends open streams cleanly and exits with
            status 0.

            Exit status:
              0   stopped by SIGINT or SIGTERM
              1   the address cannot be listened on
              2   a --document is not a valid snapshot document
              3   a --document cannot be read
              30  the cache file cannot be used
              40  a TLS file or the client tokens file cannot be used
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

    @Option(
        name: .long,
        help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM, server certificate first).", valueName: "pem")
    )
    var tlsCert: String?

    @Option(name: .long, help: ArgumentHelp("The private key of --tls-cert (PEM, unencrypted).", valueName: "pem"))
    var tlsKey: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Require client certificates signed by a CA in this file (PEM).", valueName: "pem")
    )
    var clientCA: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Require Authorization: Bearer TOKEN, with a token from this file (see above).",
            valueName: "file"
        )
    )
    var clientTokens: String?

    @ArgumentParser.Flag(
        name: .long,
        help: """
            Listen beyond loopback without --client-tokens or --client-ca, and answer --metrics-listen beyond \
            loopback (anyone who can reach the port reads every namespace, or the metrics).
            """
    )
    var allowAnonymous = false

    @Option(name: .long, help: "debug (one line per request), info, notice, warning or error.")
    var logLevel: LogLevel = .info

    @Option(
        name: .long,
        help: "The most connections served at once; more get 503 (lowered to fit the open-file limit)."
    )
    var maxConnections = 10_000

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Event-loop threads serving the connections (default: one per core).",
            valueName: "count"
        )
    )
    var threads: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Answer GET /metrics (Prometheus text format) on this address too: host:port, [ipv6]:port or a port.",
            valueName: "address"
        )
    )
    var metricsListen: String?

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
        guard let address = ListenAddress(parsing: listen) else {
            throw ValidationError("--listen \(listen) is not host:port, [ipv6]:port or a port number.")
        }
        if tlsCert != nil && tlsKey == nil {
            throw ValidationError("--tls-cert needs --tls-key: give the private key of the certificate too.")
        }
        if tlsKey != nil && tlsCert == nil {
            throw ValidationError("--tls-key needs --tls-cert: give the certificate chain of the key too.")
        }
        if clientCA != nil && tlsCert == nil {
            throw ValidationError(
                "--client-ca checks client certificates during the TLS handshake: give --tls-cert and --tls-key too."
            )
        }
        if !address.isLoopback && clientTokens == nil && clientCA == nil && !allowAnonymous {
            throw ValidationError(
                "--listen \(listen) is reachable beyond this machine, and without --client-tokens or --client-ca "
                    + "anyone who can reach it reads every namespace: give --client-tokens FILE (and --tls-cert, "
                    + "--tls-key), or --client-ca, or --allow-anonymous on a network you trust."
            )
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1.") }
        if let threads, !(1...1024).contains(threads) {
            throw ValidationError("--threads \(threads) is out of range: give a count from 1 to 1024.")
        }
        if let metricsListen {
            guard let address = ListenAddress(parsing: metricsListen) else {
                throw ValidationError(
                    "--metrics-listen \(metricsListen) is not host:port, [ipv6]:port or a port number."
                )
            }
            if !address.isLoopback && !allowAnonymous {
                throw ValidationError(
                    "--metrics-listen \(metricsListen) is reachable beyond this machine, and anyone who reaches it "
                        + "reads the metrics (namespace names included): listen on 127.0.0.1 or [::1], or give "
                        + "--allow-anonymous to accept that."
                )
            }
        }
        if namespaces.contains(where: \.isEmpty) {
            throw ValidationError("--namespace \(client.namespace) has an empty name; give a,b,c with no empty item.")
        }
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

    /// The namespaces `--run` keeps fresh: `--namespace`, split at commas, without repeats.
    var namespaces: [String] {
        var seen = Set<String>()
        return client.namespace.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { seen.insert($0).inserted }
    }

    private func serve() async throws {
        // A SIGHUP (reload) that arrives while the cache is opened, before the signals are watched, must not end
        // the process: the files are being read for the first time anyway.
        signal(SIGHUP, SIG_IGN)
        var logger = Logger(label: "flipt-offline.serve", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = logLevel.level
        let security = try loadSecurity()
        let documents = try document.map { try Self.loadDocument($0, environment: client.environment) }
        let usesCache = cache.cache != nil || document.isEmpty
        let catalog = SnapshotCatalog(defaultEnvironment: client.environment)
        var watcher: CacheWatcher?
        if usesCache {
            let store: SnapshotStore
            do throws(StoreError) {
                store = try await SnapshotStore(path: cache.path)
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

        // Trapped before anything starts, so that an early signal is not lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        // The backend first: the server and the clients take the factory in force when they are created.
        let registry = metricsListen.map { _ in PrometheusCollectorRegistry() }
        if let registry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
        let upstream =
            run
            ? try await UpstreamClients.start(
                namespaces: namespaces,
                client: client,
                cachePath: cache.path,
                logger: logger
            ) : nil
        var configuration = RelayServer.Configuration(
            address: ListenAddress(parsing: listen)!,
            maxConnections: maxConnections,
            logger: logger,
            eventLoops: threads
        )
        security.apply(to: &configuration)
        let server = RelayServer(configuration: configuration, catalog: catalog)
        let bound: ListenAddress
        do throws(RelaySocketError) {
            bound = try await server.start()
        } catch {
            await upstream?.shutdown()
            throw CommandFailure(ExitStatus.failed, error.description)
        }
        var metricsServer: MetricsServer?
        if let registry, let metricsListen, let address = ListenAddress(parsing: metricsListen) {
            let metrics = MetricsServer(
                configuration: MetricsServer.Configuration(address: address, logger: logger) {
                    server.updateMetrics()
                    return registry.emitToBuffer()
                }
            )
            do throws(RelaySocketError) {
                let metricsBound = try await metrics.start()
                logger.info("metrics on \(metricsBound.url)/metrics (Prometheus text format)")
            } catch {
                await server.shutdown()
                await upstream?.shutdown()
                throw CommandFailure(
                    ExitStatus.failed,
                    "cannot listen for metrics on \(error.address): \(error.operation) failed: \(error.reason); "
                        + "choose another address or port with --metrics-listen"
                )
            }
            metricsServer = metrics
        }
        let served = catalog.snapshots.map { "\($0.environment)/\($0.namespace)" }.joined(separator: ", ")
        let sources = (usesCache ? ["cache \(cache.path)"] : []) + document.map { "document \($0)" }
        let what = "\(served.isEmpty ? "nothing yet" : served) from \(sources.joined(separator: " and "))"
        let url = bound.url(scheme: security.tls == nil ? "http" : "https")
        logger.info(
            "listening on \(url) (Flipt snapshot API, up to \(server.connectionLimit) connections); serving \(what)"
        )
        logStartupSecurity(security, address: bound, logger: logger)
        if let upstream {
            let names = upstream.clients.map(\.namespace).joined(separator: ", ")
            logger.info(
                "keeping \(names) fresh from \(client.resolvedURL) in the background over one HTTP client (--run)"
            )
        }
        if served.isEmpty {
            logger.warning(
                "the cache holds no snapshot yet: requests get 404 until `flipt-offline sync` or `run` stores one"
            )
        }

        // One group, stopped in the reverse order of this list on SIGTERM or SIGINT: the metrics endpoint, the
        // server (open streams end), the cache watcher, then the clients that keep the cache fresh (--run).
        var services: [any Service] = upstream?.clients.map { $0 as any Service } ?? []
        if let watcher { services.append(watcher) }
        services.append(server)
        if let metricsServer { services.append(metricsServer) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                logger: logger
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var received = signals.makeAsyncIterator()
            var signal = await received.next()
            while signal == .sighup {
                if security.tls == nil && security.tokens == nil {
                    logger.notice("SIGHUP: nothing to reload (no --tls-cert or --client-tokens)")
                } else {
                    logger.notice("SIGHUP: reloading the TLS and client token files")
                    security.reload(logger: logger)
                }
                signal = await received.next()
            }
            logger.info("\(signal.map(String.init(describing:)) ?? "end of signals"): stopping")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await upstream?.shutdown()
        let statistics = server.statistics
        let counts = "\(statistics.notModified) not modified, \(statistics.errors) errors"
        logger.info("stopped after \(statistics.requests) requests (\(counts))")
    }

    /// Reads the TLS files and the tokens file given on the command line.
    private func loadSecurity() throws -> RelaySecurity {
        var tls: ReloadableTLSContext?
        if let tlsCert, let tlsKey {
            do throws(TLSFilesError) {
                tls = try ReloadableTLSContext(
                    files: TLSFiles(certificateChainPath: tlsCert, privateKeyPath: tlsKey, clientCAPath: clientCA)
                )
            } catch {
                throw CommandFailure(ExitStatus.securityFiles, "cannot serve TLS: \(error)")
            }
        }
        var tokens: ClientTokenFile?
        if let clientTokens {
            do throws(ClientTokensError) {
                tokens = try ClientTokenFile(path: clientTokens)
            } catch {
                throw CommandFailure(ExitStatus.securityFiles, "cannot use --client-tokens: \(error)")
            }
        }
        return RelaySecurity(tls: tls, tokens: tokens)
    }

    /// Says what clients must present (never a token), and warns about what leaves the relay open.
    private func logStartupSecurity(_ security: RelaySecurity, address: ListenAddress, logger: Logger) {
        for warning in security.tls?.loaded.warnings ?? [] { logger.warning("\(warning)") }
        let requirements = security.requirements
        if requirements.isEmpty {
            if !address.isLoopback {
                let advice = "anyone who can reach \(address) reads every namespace"
                logger.warning("no client tokens or client certificates required (--allow-anonymous): \(advice)")
            }
        } else {
            logger.info("clients must present \(requirements.joined(separator: " and "))")
        }
        if let tokens = security.tokens {
            if tokens.tokens.isEmpty {
                logger.warning("\(tokens.path) holds no client token: every request is refused until it does")
            }
            if security.tls == nil && !address.isLoopback {
                let advice = "give --tls-cert and --tls-key unless the network in between is trusted"
                logger.warning("client tokens travel in clear text without TLS: \(advice)")
            }
        }
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
