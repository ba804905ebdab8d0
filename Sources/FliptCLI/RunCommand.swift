import ArgumentParser
import Flipt
import FliptRelay
import FliptStore
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `flipt-offline run`: keep the cache in sync until SIGINT or SIGTERM, logging each outcome.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Keep the cache in sync (polling or streaming) until interrupted, logging each outcome.",
        discussion: """
            Runs a FliptClient with the cache, exactly as an application would: it starts from the cached last \
            good snapshot, then polls every --update-interval (or streams, with --fetch-mode streaming) and \
            stores every new snapshot. Each outcome is logged as one line on standard output: the time (UTC), \
            the event, then key=value fields.

              started       the configuration, and the snapshot served at start
              updated       a new snapshot replaced the one in use (etag, flags)
              not_modified  the server confirmed the snapshot in use (304)
              failed        a fetch failed (error); the last good snapshot stays in use
              recovered     a fetch succeeded after failures
              stale         the snapshot passed the maximum age (not set by this command)
              stopping      a signal arrived; the client is closing
              stopped       the client closed; no cache write follows

            SIGINT or SIGTERM closes the client cleanly and exits with status 0. With --json every line is \
            one JSON object instead. The credential is never logged.

            --metrics-listen 127.0.0.1:PORT answers GET /metrics there in Prometheus's text format: the \
            fetches by result and status (flipt_sync_fetches_total), their duration and the bytes received \
            (the started line gives the address). Loopback addresses only; `serve` can expose metrics further.

            Examples:
              flipt-offline run --url https://flipt.example.com --update-interval 30s
              flipt-offline run --url https://flipt.internal --fetch-mode streaming --json

            Exit status:
              0   stopped by SIGINT or SIGTERM
              1   the --metrics-listen address cannot be listened on
              30  the cache file cannot be used
              64  the command line or the options are invalid
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options")
    var client: ClientOptionGroup

    @ArgumentParser.Flag(name: .long, help: "Log JSON lines instead of text lines.")
    var json = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Answer GET /metrics (Prometheus text format) on this loopback address: host:port, [::1]:port or a port.",
            valueName: "address"
        )
    )
    var metricsListen: String?

    func validate() throws {
        guard let metricsListen else { return }
        guard let address = ListenAddress(parsing: metricsListen) else {
            throw ValidationError("--metrics-listen \(metricsListen) is not host:port, [ipv6]:port or a port number.")
        }
        guard address.isLoopback else {
            throw ValidationError(
                "--metrics-listen \(metricsListen) is not a loopback address: `run` answers metrics on 127.0.0.1 or "
                    + "[::1] only; `serve --metrics-listen ADDRESS --allow-anonymous` exposes them further."
            )
        }
    }

    func run() async throws {
        try await CommandFailure.reporting("run") { try await keepSyncing() }
    }

    private func keepSyncing() async throws {
        let options = try client.clientOptions(cachePath: cache.path)
        // Trap the signals before the client starts, so that an early one is not lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        // The backend first: the client takes the factory in force when it is created.
        let registry = metricsListen.map { _ in PrometheusCollectorRegistry() }
        if let registry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
        let flipt: FliptClient
        do {
            flipt = try FliptClient(namespace: client.namespace, options: options, startsSyncing: false)
        } catch {
            let status = error.underlying is StoreError ? ExitStatus.cache : ExitStatus.usage
            throw CommandFailure(status, error.message)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var metricsURL: String?
        if let registry, let metricsListen, let address = ListenAddress(parsing: metricsListen) {
            let server = MetricsServer(
                configuration: MetricsServer.Configuration(address: address) { registry.emitToBuffer() }
            )
            do throws(RelaySocketError) {
                metricsURL = "\(try await server.start().url)/metrics"
            } catch {
                flipt.close()
                throw CommandFailure(
                    ExitStatus.failed,
                    "cannot listen for metrics on \(error.address): \(error.operation) failed: \(error.reason); "
                        + "choose another address or port with --metrics-listen"
                )
            }
            services.append(.init(service: server))
        }
        let log = RunLog(json: json)
        let events = flipt.events()  // subscribed before the sync starts: no outcome is missed
        var fields = [
            ("server", options.url), ("namespace", client.namespace), ("environment", options.environment),
            ("mode", options.fetchMode.rawValue), ("interval", client.updateInterval.text), ("cache", cache.path),
        ]
        if let metricsURL { fields.append(("metrics", metricsURL)) }
        log.start(flipt.status, fields: fields)
        // Stopped in reverse order: the metrics endpoint, then the client (which ends the event stream), then the
        // log of its events, so that an outcome that lands while the client closes is still logged.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(
                        service: EventLog(events: events, log: log, client: flipt),
                        successTerminationBehavior: .ignore
                    ), .init(service: flipt),
                ]
                    + services,
                logger: Logger(label: "flipt-offline.run", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = signals.makeAsyncIterator()
            let signal = await iterator.next()
            log.line("stopping", [("signal", .string(signal.map(String.init(describing:)) ?? "SIGTERM"))])
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        log.line("stopped", [])
    }
}

/// Logs the client's events as `run` lines until the client closes (which ends the stream).
private struct EventLog: Service {
    let events: AsyncStream<ClientEvent>
    let log: RunLog
    let client: FliptClient

    func run() async throws {
        for await event in events { log.record(event, current: client.status) }
        // The stream ends when the client stops, just before the group asks this service to stop: a service that
        // ended out of turn would fail the group's graceful shutdown.
        try? await gracefulShutdown()
    }
}

/// The log of `run`: one line per outcome, text (`time event key=value …`) or JSON.
///
/// Events from the client stream give updates, confirmations (`304`), failures, recoveries and staleness.
final class RunLog: Sendable {
    private let json: Bool

    init(json: Bool) {
        self.json = json
    }

    func start(_ status: ClientStatus, fields: [(String, String)]) {
        var members = fields.map { ($0.0, JSONValue.string($0.1)) }
        members += Self.members(of: status)
        if let problem = status.cacheProblem { members.append(("cache_problem", .string(problem))) }
        line("started", members)
    }

    func record(_ event: ClientEvent, current: ClientStatus) {
        switch event {
        case .snapshotReplaced(let status, _):
            line("updated", Self.members(of: status))
        case .recovered(let status):
            line("recovered", Self.members(of: status))
        case .becameStale(let status):
            line("stale", Self.members(of: status))
        case .confirmed(let status):
            line("not_modified", Self.members(of: status))
        case .fetchFailed(let error):
            var members: [(String, JSONValue)] = [("error", .string(error.message))]
            if let problem = current.cacheProblem { members.append(("cache_problem", .string(problem))) }
            line("failed", members)
        }
    }

    func line(_ event: String, _ members: [(String, JSONValue)]) {
        let time = Timestamp.string(from: Date())
        if json {
            Terminal.line(JSONValue.object([("time", .string(time)), ("event", .string(event))] + members).text)
            return
        }
        var text = "\(time) \(event)"
        for (name, value) in members {
            switch value {
            case .null: continue
            case .string(let string): text += " \(name)=\(Self.logfmt(string))"
            default: text += " \(name)=\(value.text)"
            }
        }
        Terminal.line(text)
    }

    private static func members(of status: ClientStatus) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("source", .string(status.source.rawValue)), ("etag", .optional(status.etag)),
            ("flags", .int(status.flagCount)),
        ]
        if let age = status.age {
            members.append(("age_seconds", .double((Double(Describe.milliseconds(age)) / 1000))))
        }
        return members
    }

    /// A logfmt value: bare when it has no spaces, quotes or `=`, otherwise quoted with escapes.
    private static func logfmt(_ value: String) -> String {
        if !value.isEmpty && !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) {
            return value
        }
        return JSONValue.string(value).text
    }
}
