import FliptTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built `flipt-offline serve` keeping several namespaces fresh (`--run --namespace a,b,c`) and answering
/// `/metrics` (`--metrics-listen`), against a real loopback Flipt server.
@Suite("flipt-offline serve for fleets: several namespaces, metrics", .serialized, .timeLimit(.minutes(2)))
struct ServeFleetTests {
    static func v1(_ namespace: String) -> String { "/internal/v1/evaluation/snapshot/namespace/\(namespace)" }

    /// The first flag's description (`revision N`) of what serve answers for `namespace`, or nil for no 200.
    static func servedRevision(port: UInt16, namespace: String) -> String? {
        guard let client = try? RawHTTPClient(port: port) else { return nil }
        guard (try? client.get(v1(namespace))) != nil, let response = try? client.readResponse(),
            response.status == 200
        else { return nil }
        guard response.text.contains("\"key\":\"\(namespace)\"") else { return nil }
        return ["revision 0", "revision 1", "revision 2"].first { response.text.contains($0) }
    }

    @Test(
        "--run --namespace with ten namespaces: each served and refreshed over one connection pool; a missing one is reported alone"
    )
    func severalNamespaces() async throws {
        try await withTestServer { upstream in
            let present = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
            for namespace in present {
                upstream.setDocument(FixtureDocument.bytes(namespace: namespace), namespace: namespace)
            }
            try await withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("cache.sqlite3").path
                let (serve, port) = try await ServeProcessTests.startServe([
                    "--cache", path, "--run", "--url", upstream.baseURL.absoluteString, "--update-interval", "200ms",
                    "--namespace", (present + ["nope"]).joined(separator: ","),
                ])
                defer { serve.send(SIGKILL) }
                // Logged just after the "listening on" line that startServe waits for.
                let announced = await eventually(timeout: .seconds(15)) {
                    serve.stderr.contains("keeping alpha, beta, gamma")
                }
                #expect(announced, "\(serve.stderr)")
                let allServed = await eventually(timeout: .seconds(30)) {
                    present.allSatisfy { Self.servedRevision(port: port, namespace: $0) == "revision 0" }
                }
                #expect(allServed, "\(serve.stderr)")
                let reported = await eventually(timeout: .seconds(15)) {
                    serve.stderr.contains("namespace nope: fetch failed")
                }
                #expect(reported, "\(serve.stderr)")
                let line = serve.stderr.split(separator: "\n").first { $0.contains("namespace nope:") } ?? ""
                #expect(line.contains("404"), "\(line)")
                // Reported once, not on every poll.
                #expect(serve.stderr.components(separatedBy: "namespace nope: fetch failed").count == 2)

                for namespace in present {
                    upstream.setDocument(FixtureDocument.bytes(namespace: namespace, revision: 1), namespace: namespace)
                }
                let allChanged = await eventually(timeout: .seconds(30)) {
                    present.allSatisfy { Self.servedRevision(port: port, namespace: $0) == "revision 1" }
                }
                #expect(allChanged, "\(serve.stderr)")

                // One pool: fewer connections than namespaces (a client each would hold ten), and connections
                // that carried the polls of several namespaces.
                var namespacesByConnection: [Int: Set<String>] = [:]
                for request in upstream.requests(to: .snapshot) {
                    let namespace = String(request.path.split(separator: "/").last ?? "")
                    namespacesByConnection[request.connectionID, default: []].insert(namespace)
                }
                let connections = upstream.traffic.connections
                print(
                    "serve --run with 10 namespaces: \(connections) upstream connections, \(upstream.traffic.requests) requests"
                )
                #expect(connections < present.count + 1, "\(namespacesByConnection)")
                #expect(namespacesByConnection.values.contains { $0.count >= 2 }, "\(namespacesByConnection)")
                #expect(Set(namespacesByConnection.values.flatMap { $0 }) == Set(present + ["nope"]))

                serve.send(SIGTERM)
                #expect(await serve.waitForExit() == 0)
            }
        }
    }

    /// `/metrics` of the listener on `port`, as `name{label="value",…}` (labels sorted) → value.
    static func scrape(port: UInt16) throws -> [String: Double] {
        let client = try RawHTTPClient(port: port)
        try client.get("/metrics")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        var samples: [String: Double] = [:]
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            var name = String(line[..<space])
            if let brace = name.firstIndex(of: "{") {
                let labels = name[name.index(after: brace)..<name.index(before: name.endIndex)]
                    .split(separator: ",").sorted().joined(separator: ",")
                name = String(name[..<brace]) + "{" + labels + "}"
            }
            samples[name] = value
        }
        return samples
    }

    @Test("--metrics-listen: requests by route and status, open streams, snapshot age and upstream sync outcomes")
    func metricsEndpoint() async throws {
        try await withTestServer { upstream in
            upstream.setDocument(FixtureDocument.bytes())
            try await withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("cache.sqlite3").path
                let (serve, port) = try await ServeProcessTests.startServe([
                    "--cache", path, "--run", "--url", upstream.baseURL.absoluteString, "--update-interval", "200ms",
                    "--metrics-listen", "127.0.0.1:0",
                ])
                defer { serve.send(SIGKILL) }
                let metricsPort = try #require(
                    UInt16(
                        try await serve.waitForStandardError(
                            matching: "metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics"
                        )
                    )
                )
                // Every answer of the test is counted here, to compare with the server's counters.
                var answers: [String: Int] = [:]
                var etag: String?
                let synced = try await eventually(timeout: .seconds(15)) {
                    let client = try RawHTTPClient(port: port)
                    try client.get(Self.v1("default"))
                    let response = try client.readResponse()
                    answers["v1_snapshot \(response.status)", default: 0] += 1
                    etag = response.header("Etag")
                    return response.status == 200
                }
                #expect(synced)
                let client = try RawHTTPClient(port: port)
                for _ in 0..<3 {
                    try client.get(Self.v1("default"), headers: ["If-None-Match: \(etag ?? "")"])
                    #expect(try client.readResponse().status == 304)
                    answers["v1_snapshot 304", default: 0] += 1
                }
                try client.get("/health")
                #expect(try client.readResponse().status == 200)
                try client.get(Self.v1("missing"))
                #expect(try client.readResponse().status == 404)
                answers["v1_snapshot 404", default: 0] += 1
                let stream = try RawHTTPClient(port: port)
                try stream.get("/client/v2/environments/default/namespaces/default/stream")
                #expect(try stream.readHead().status == 200)
                let message = try stream.readChunk()

                let samples = try Self.scrape(port: metricsPort)
                func requests(_ route: String, _ status: Int) -> Double? {
                    samples["flipt_relay_requests_total{route=\"\(route)\",status=\"\(status)\"}"]
                }
                for (key, count) in answers {
                    let parts = key.split(separator: " ")
                    #expect(requests(String(parts[0]), Int(parts[1])!) == Double(count), "\(key) in \(samples)")
                }
                #expect(requests("health", 200) == 1)
                #expect(requests("v2_stream", 200) == 1)
                #expect(samples["flipt_relay_open_streams"] == 1)
                #expect((samples["flipt_relay_open_connections"] ?? 0) >= 2)
                #expect(samples["flipt_relay_sent_body_bytes_total{route=\"v2_stream\"}"] == Double(message.count))
                let age = try #require(
                    samples["flipt_relay_snapshot_age_seconds{environment=\"default\",namespace=\"default\"}"],
                    "\(samples)"
                )
                #expect(age >= 0 && age < 60)
                let updated = samples[
                    "flipt_sync_fetches_total{namespace=\"default\",result=\"updated\",status=\"200\"}"
                ]
                #expect(updated == 1, "\(samples)")
                // Polls every 200 ms confirm the snapshot with 304s, and the scrape after shows more of them.
                let confirmed = await eventually(timeout: .seconds(15)) {
                    let later = (try? Self.scrape(port: metricsPort)) ?? [:]
                    return
                        (later[
                            "flipt_sync_fetches_total{namespace=\"default\",result=\"not_modified\",status=\"304\"}"
                        ] ?? 0) >= 2
                }
                #expect(confirmed)

                let other = try RawHTTPClient(port: metricsPort)
                try other.get("/")
                #expect(try other.readResponse().status == 404)

                shutdown(stream.fd, Int32(SHUT_RDWR))
                let streamClosed = await eventually(timeout: .seconds(10)) {
                    (try? Self.scrape(port: metricsPort))?["flipt_relay_open_streams"] == 0
                }
                #expect(streamClosed)
                serve.send(SIGTERM)
                #expect(await serve.waitForExit() == 0)
            }
        }
    }

    @Test("--metrics-listen beyond loopback refuses to start without --allow-anonymous, and starts with it")
    func metricsBeyondLoopback() async throws {
        try await withTemporaryDirectory { directory in
            let document = directory.appendingPathComponent("doc.json")
            try Data(ServeProcessTests.document(flag: "f").utf8).write(to: document)
            for address in ["0.0.0.0:0", "[::]:0", "192.0.2.1:9464"] {
                let refused = try ToolProcess([
                    "serve", "--document", document.path, "--listen", "127.0.0.1:0", "--metrics-listen", address,
                ])
                #expect(await refused.waitForExit() == 64)
                #expect(refused.stderr.contains("--allow-anonymous"), "\(address): \(refused.stderr)")
            }

            let (serve, _) = try await ServeProcessTests.startServe([
                "--document", document.path, "--metrics-listen", "0.0.0.0:0", "--allow-anonymous",
            ])
            defer { serve.send(SIGKILL) }
            let port = try #require(
                UInt16(try await serve.waitForStandardError(matching: "metrics on http://127\\.0\\.0\\.1:([0-9]+)/"))
            )
            #expect(try Self.scrape(port: port)["flipt_relay_open_streams"] == 0)
            serve.send(SIGTERM)
            #expect(await serve.waitForExit() == 0)
        }
    }

    @Test("run --metrics-listen: the client's fetches at /metrics; an address beyond loopback is refused")
    func runMetrics() async throws {
        try await withTestServer { upstream in
            upstream.setDocument(FixtureDocument.bytes())
            try await withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("cache.sqlite3").path
                let arguments = ["run", "--cache", path, "--url", upstream.baseURL.absoluteString]
                let refused = try ToolProcess(arguments + ["--metrics-listen", "0.0.0.0:0"])
                #expect(await refused.waitForExit() == 64)
                #expect(refused.stderr.contains("loopback"), "\(refused.stderr)")

                let run = try ToolProcess(
                    arguments + ["--update-interval", "100ms", "--metrics-listen", "127.0.0.1:0"]
                )
                defer { run.send(SIGKILL) }
                let pattern = try NSRegularExpression(pattern: "metrics=http://127\\.0\\.0\\.1:([0-9]+)/metrics")
                var port: UInt16?
                let started = await eventually(timeout: .seconds(15)) {
                    let text = run.stdout
                    guard let match = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                        let range = Range(match.range(at: 1), in: text)
                    else { return false }
                    port = UInt16(text[range])
                    return true
                }
                #expect(started, "\(run.stdout)\n\(run.stderr)")
                let metricsPort = try #require(port)
                let counted = await eventually(timeout: .seconds(15)) {
                    let samples = (try? Self.scrape(port: metricsPort)) ?? [:]
                    let prefix = "flipt_sync_fetches_total{namespace=\"default\",result="
                    return samples[prefix + "\"updated\",status=\"200\"}"] == 1
                        && (samples[prefix + "\"not_modified\",status=\"304\"}"] ?? 0) >= 1
                }
                #expect(counted, "\(run.stdout)")
                run.send(SIGTERM)
                #expect(await run.waitForExit() == 0)
            }
        }
    }

    @Test("serve refuses an empty namespace in --namespace and a malformed --metrics-listen")
    func refusals() async throws {
        for arguments in [
            ["--run", "--url", "http://127.0.0.1:1", "--namespace", "a,,b"],
            ["--document", "/dev/null", "--metrics-listen", "nowhere"],
        ] {
            let serve = try ToolProcess(["serve", "--listen", "127.0.0.1:0"] + arguments)
            #expect(await serve.waitForExit() == 64)
            #expect(!serve.stderr.isEmpty)
        }
    }
}
