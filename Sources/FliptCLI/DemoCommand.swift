import ArgumentParser
import Flipt
import FliptRelay
import Foundation

/// `flipt-offline demo`: the whole offline-first story on this machine, in a few seconds, with no Flipt server.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show offline-first evaluation end to end, on this machine, in a few seconds.",
        discussion: """
            Needs no network, no Flipt server and no arguments. Step by step, it:

              1. serves the bundled example snapshot on a random 127.0.0.1 port (the `serve` relay);
              2. starts a FliptClient against it, which fetches the snapshot and stores it in a temporary cache;
              3. evaluates a variant flag, a boolean flag and the flag list (answers from the network);
              4. stops the server;
              5. starts a NEW FliptClient, which answers at once from the cache (a cold start offline);
              6. removes its temporary files.

            Each line says where an answer came from (network or cache), with the ETag and the snapshot's age.

            Exit status:
              0   every step worked
              1   a step failed (the message says which)
            """
    )

    func run() async throws {
        try await CommandFailure.reporting("demo") { try await demonstrate() }
    }

    /// The evaluations of steps 3 and 5, as one comparable line each.
    private struct Answers: Equatable {
        var lines: [String]
    }

    private func demonstrate() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("flipt-offline-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cachePath = directory.appendingPathComponent("cache.sqlite3").path

        let served = ServedSnapshot(
            namespace: ExampleDocument.namespace,
            environment: "default",
            document: Array(ExampleDocument.json.utf8),
            origin: "the bundled example"
        )
        let server = RelayServer(
            configuration: RelayServer.Configuration(address: ListenAddress(host: "127.0.0.1", port: 0)),
            catalog: SnapshotCatalog(snapshots: [served])
        )
        let address: ListenAddress
        do throws(RelaySocketError) {
            address = try await server.start()
        } catch {
            throw CommandFailure(ExitStatus.failed, "step 1 failed: \(error)")
        }
        step(1, "A Flipt-compatible server (flipt-offline serve) is up at \(address.url), serving the bundled")
        note("example snapshot of namespace \"default\": 3 flags, ETag \(Self.short(served.etag)).")

        let options = ClientOptions(
            url: address.url,
            updateInterval: .seconds(60),
            errorStrategy: .fallback,
            cache: CacheOptions(location: .file(cachePath))
        )
        let online = try FliptClient(namespace: ExampleDocument.namespace, options: options)
        do {
            try await online.waitUntilReady(timeout: .seconds(10))
        } catch {
            await server.shutdown()
            throw CommandFailure(
                ExitStatus.failed,
                "step 2 failed: the client could not fetch from the server: \(error)"
            )
        }
        let onlineStatus = online.status
        step(2, "A FliptClient (url \(address.url), errorStrategy fallback) fetched the snapshot over HTTP")
        note("and saved it in the cache file \(cachePath).")
        let etag = Self.short(onlineStatus.etag)
        note("source: \(onlineStatus.source.rawValue), ETag \(etag), \(onlineStatus.flagCount) flags")

        step(3, "Evaluations, answered from the snapshot that came over the network:")
        let first = try evaluate(online)
        for line in first.lines { note(line + "   [network]") }
        await online.shutdown()

        await server.shutdown()
        step(4, "The server is stopped: nothing answers at \(address.url) any more (the network is gone).")

        let coldStart = clock.now
        let offline = try FliptClient(namespace: ExampleDocument.namespace, options: options)
        defer { offline.close() }
        let offlineStatus = offline.status
        let second = try evaluate(offline)
        let elapsed = clock.now - coldStart
        guard offlineStatus.source == .cache else {
            throw CommandFailure(
                ExitStatus.failed,
                "step 5 failed: the new client did not start from the cache (source: \(offlineStatus.source.rawValue))"
            )
        }
        step(5, "A NEW FliptClient with the same options starts with no server to talk to (a cold start offline).")
        note(
            "It loaded the snapshot from the cache at once: source \(offlineStatus.source.rawValue), ETag "
                + "\(Self.short(offlineStatus.etag)), age \(Self.seconds(offlineStatus.age)); first answers in "
                + "\(Self.seconds(elapsed)):"
        )
        for line in second.lines { note(line + "   [cache]") }
        guard first == second else {
            throw CommandFailure(ExitStatus.failed, "step 5 failed: the cached answers differ from the network's")
        }
        note("Same answers as with the network. Its background refresh cannot reach the server; with")
        note("errorStrategy fallback it keeps answering from the cache until the server is back.")
        await offline.shutdown()

        step(6, "Removed the temporary cache. Done in \(Self.seconds(clock.now - started)).")
    }

    /// Evaluates the demo's flags: a variant flag, a boolean flag, and the flag list.
    private func evaluate(_ client: FliptClient) throws -> Answers {
        do {
            let checkout = try client.evaluateVariant(
                flagKey: "new-checkout",
                entityID: "user-42",
                context: ["plan": "pro"]
            )
            let dark = try client.evaluateBoolean(flagKey: "dark-mode", entityID: "user-42", context: ["beta": "true"])
            let flags = try client.listFlags()
            let list = flags.map { "\($0.key) (\($0.isEnabled ? "on" : "off"))" }.joined(separator: ", ")
            let segments = checkout.segmentKeys.joined(separator: ",")
            let why = Self.name(checkout.reason) + (segments.isEmpty ? "" : ", segment \(segments)")
            return Answers(lines: [
                "new-checkout (variant) for user-42, plan=pro: \(checkout.variantKey) (\(why))",
                "dark-mode (boolean) for user-42, beta=true: \(dark.isEnabled) (\(Self.name(dark.reason)))",
                "flag list: \(list)",
            ])
        } catch {
            throw CommandFailure(ExitStatus.failed, "an evaluation failed: \(error.message)")
        }
    }

    private static func name(_ reason: EvaluationReason) -> String {
        switch reason {
        case .match: "matched"
        case .default: "default"
        case .flagDisabled: "flag disabled"
        case .unknown: "no match"
        }
    }

    private func step(_ number: Int, _ text: String) {
        Terminal.line("\(number). \(text)")
    }

    private func note(_ text: String) {
        Terminal.line("   \(text)")
    }

    private static func short(_ etag: String?) -> String {
        guard let etag else { return "(none)" }
        return etag.count > 12 ? "\(etag.prefix(12))…" : etag
    }

    private static func seconds(_ duration: Duration?) -> String {
        guard let duration else { return "unknown" }
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value < 1 ? String(format: "%.0f ms", value * 1000) : String(format: "%.1f s", value)
    }
}
