import Flipt
import FliptStore
import FliptSync
import Logging
import Synchronization

/// The clients of `serve --run`: one ``FliptClient`` per namespace, all on one HTTP transport (one connection pool),
/// each watched by a task that logs its failures and recoveries.
///
/// A namespace that fails (unknown to the server, say) is logged once per distinct error and does not stop the
/// others. ``shutdown()`` stops every client, then the shared transport, once.
final class UpstreamClients: Sendable {
    /// The clients, in the order of the namespaces.
    let clients: [FliptClient]
    private let transport: SharedTransport
    private let watchers: [Task<Void, Never>]

    private init(clients: [FliptClient], transport: SharedTransport, watchers: [Task<Void, Never>]) {
        self.clients = clients
        self.transport = transport
        self.watchers = watchers
    }

    /// Creates the shared transport and one client per namespace, and starts them.
    ///
    /// - Throws: ``CommandFailure`` with ``ExitStatus/cache`` when the cache cannot be used, else
    ///   ``ExitStatus/usage`` for options that cannot work.
    static func start(
        namespaces: [String],
        client: ClientOptionGroup,
        cachePath: String,
        logger: Logger
    ) async throws -> UpstreamClients {
        var options = try client.clientOptions(cachePath: cachePath)
        let transport: SharedTransport
        do {
            transport = try options.makeTransport()
        } catch {
            throw CommandFailure(ExitStatus.usage, error.message)
        }
        options.transport = transport
        var clients: [FliptClient] = []
        for namespace in namespaces {
            do {
                clients.append(try FliptClient(namespace: namespace, options: options))
            } catch {
                for started in clients { await started.shutdown() }
                await transport.shutdown()
                let status = error.underlying is StoreError ? ExitStatus.cache : ExitStatus.usage
                throw CommandFailure(status, error.message)
            }
        }
        let watchers = clients.map { flipt in Task { await Self.watch(flipt, logger: logger) } }
        return UpstreamClients(clients: clients, transport: transport, watchers: watchers)
    }

    /// Stops every client, then the transport they share, and waits for the watchers to end.
    func shutdown() async {
        await withTaskGroup(of: Void.self) { group in
            for flipt in clients { group.addTask { await flipt.shutdown() } }
        }
        await transport.shutdown()
        for watcher in watchers { await watcher.value }
    }

    /// Logs a client's failures (once per distinct error) and recoveries until it closes.
    private static func watch(_ flipt: FliptClient, logger: Logger) async {
        let events = flipt.events()
        let namespace = flipt.namespace
        var reported: String?
        func failed(_ error: FliptError) {
            guard error.message != reported else { return }
            reported = error.message
            let effect = "retried every --update-interval; the other namespaces are not affected"
            logger.warning("--run: namespace \(namespace): fetch failed: \(error.message) (\(effect))")
        }
        // A failure before the subscription raised its event already.
        if let error = flipt.status.lastError { failed(error) }
        for await event in events {
            switch event {
            case .fetchFailed(let error):
                failed(error)
            case .recovered:
                reported = nil
                logger.info("--run: namespace \(namespace): fetching works again")
            case .snapshotReplaced(let status, _):
                logger.debug("--run: namespace \(namespace): new snapshot, etag \(status.etag ?? "none")")
            case .becameStale, .confirmed:
                break
            }
        }
    }
}
