import FliptSync
import FliptTestSupport
import Foundation
import Testing

@Suite("Proxies from the environment")
struct ProxyEnvironmentTests {
    private let http = URL(string: "http://flipt.example.com:8080")!
    private let https = URL(string: "https://flipt.example.com")!

    @Test("each scheme reads its own variable, as curl does; all_proxy is the fallback")
    func variables() throws {
        let environment = [
            "http_proxy": "proxy-a:3128", "HTTPS_PROXY": "http://proxy-b:8443", "all_proxy": "socks5://proxy-c",
        ]
        #expect(
            try HTTPProxy.fromEnvironment(for: http, environment: environment) == HTTPProxy(host: "proxy-a", port: 3128)
        )
        #expect(
            try HTTPProxy.fromEnvironment(for: https, environment: environment)
                == HTTPProxy(host: "proxy-b", port: 8443)
        )
        #expect(
            try HTTPProxy.fromEnvironment(for: http, environment: ["all_proxy": "socks5://proxy-c"])
                == HTTPProxy(kind: .socks5, host: "proxy-c", port: 1080)
        )
        // Upper-case HTTP_PROXY is ignored (a CGI request header can set it); https_proxy wins over HTTPS_PROXY.
        #expect(try HTTPProxy.fromEnvironment(for: http, environment: ["HTTP_PROXY": "proxy-a:1"]) == nil)
        #expect(
            try HTTPProxy.fromEnvironment(for: https, environment: ["https_proxy": "low:1", "HTTPS_PROXY": "up:2"])?
                .host
                == "low"
        )
        #expect(try HTTPProxy.fromEnvironment(for: https, environment: ["https_proxy": "  "]) == nil)
        #expect(try HTTPProxy.fromEnvironment(for: http, environment: [:]) == nil)
    }

    @Test("credentials are percent-decoded, kept for the proxy, and left out of the description")
    func credentials() throws {
        let proxy = try #require(
            try HTTPProxy.fromEnvironment(for: https, environment: ["https_proxy": "http://dev%40corp:p%3Ass@gw:3128"])
        )
        #expect(proxy.username == "dev@corp" && proxy.password == "p:ss")
        #expect("\(proxy)" == "http://gw:3128")
        #expect(!String(reflecting: proxy).contains("p:ss"))
    }

    @Test(
        "no_proxy exempts hosts, domain suffixes, IP addresses, ports and everything with *",
        arguments: [
            ("flipt.example.com", true), (".example.com", true), ("example.com", true), ("*.example.com", true),
            ("*", true), ("flipt.example.com:8080", true), ("flipt.example.com:9090", false), ("ample.com", false),
            ("other.example.com", false), ("localhost,127.0.0.1", false), ("", false), (" , ,example.com", true),
        ]
    )
    func noProxy(list: String, exempt: Bool) throws {
        let proxy = try HTTPProxy.fromEnvironment(for: http, environment: ["http_proxy": "gw:3128", "no_proxy": list])
        #expect((proxy == nil) == exempt)
        let upper = try HTTPProxy.fromEnvironment(for: http, environment: ["http_proxy": "gw:3128", "NO_PROXY": list])
        #expect((upper == nil) == exempt)
    }

    @Test(
        "a server on this machine is always reached directly",
        arguments: [
            "http://localhost:8080", "http://127.0.0.1:9", "http://127.1.2.3", "http://[::1]:8080",
            "http://a.localhost",
        ]
    )
    func loopback(url: String) throws {
        let environment = ["http_proxy": "gw:3128", "all_proxy": "gw:3128"]
        #expect(try HTTPProxy.fromEnvironment(for: URL(string: url)!, environment: environment) == nil)
        let near = URL(string: "http://127.0.0.1.example.com")!
        #expect(try HTTPProxy.fromEnvironment(for: near, environment: environment) != nil)
    }

    @Test("no_proxy matches IP addresses, IPv6 literals included")
    func noProxyAddresses() throws {
        let v4 = URL(string: "http://10.1.2.3:8080")!
        let v6 = URL(string: "http://[fd00::5]:8080")!
        let environment = ["http_proxy": "gw:3128", "no_proxy": "10.1.2.3,[fd00::5]"]
        #expect(try HTTPProxy.fromEnvironment(for: v4, environment: environment) == nil)
        #expect(try HTTPProxy.fromEnvironment(for: v6, environment: environment) == nil)
        #expect(
            try HTTPProxy.fromEnvironment(for: v6, environment: ["http_proxy": "gw:3128", "no_proxy": "fd00::6"]) != nil
        )
    }

    @Test(
        "an unusable proxy is a configuration error naming the variable, never a silent direct connection",
        arguments: ["https://gw:3128", "socks4://gw", "http://:3128", "gw:99999", "ftp://gw"]
    )
    func unusable(value: String) {
        let error = #expect(throws: SyncError.self) {
            try HTTPProxy.fromEnvironment(for: https, environment: ["HTTPS_PROXY": value])
        }
        #expect(error?.kind == .configuration)
        #expect(error?.message.contains("HTTPS_PROXY") == true, "\(error?.message ?? "")")
    }
}

@Suite("Fetching through a proxy", .timeLimit(.minutes(1)))
struct ProxyFetchTests {
    /// A fetcher for the server under a name no resolver knows, so that only the proxy can reach it.
    private func fetcher(_ server: TestFliptServer, proxy: HTTPProxy) throws -> (SnapshotFetcher, any HTTPTransport) {
        let transport = try AsyncHTTPClientTransport(proxy: proxy)
        var configuration = SyncConfiguration(url: URL(string: "http://flipt.test:\(server.port)")!)
        configuration.retryPolicy = RetryPolicy(maximumRetries: 0)
        configuration.requestTimeout = .seconds(10)
        return (try SnapshotFetcher(configuration: configuration, transport: transport), transport)
    }

    @Test("a snapshot, then a 304, through an HTTP proxy's tunnel, with its Basic credentials")
    func tunnel() async throws {
        let proxy = try ConnectProxy(requiredAuthorization: "Basic " + Data("dev:s3cret".utf8).base64EncodedString())
        defer { proxy.stop() }
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let setting = HTTPProxy(host: "127.0.0.1", port: Int(proxy.port), username: "dev", password: "s3cret")
            let (fetcher, transport) = try fetcher(server, proxy: setting)
            let first = try await fetcher.fetch(ifNoneMatch: nil)
            guard case .modified(let snapshot) = first else {
                Issue.record("expected a snapshot, got \(first)")
                return
            }
            let etag = try #require(snapshot.etag)
            guard case .notModified(etag) = try await fetcher.fetch(ifNoneMatch: etag) else {
                Issue.record("the second fetch, with If-None-Match, was not a 304")
                return
            }
            #expect(proxy.tunnels.first?.target == "flipt.test:\(server.port)")
            #expect(server.requests.count == 2)
            await (transport as? AsyncHTTPClientTransport)?.shutdown()
        }
    }

    @Test("a proxy that refuses the credentials fails the fetch; nothing reaches the server")
    func refused() async throws {
        let proxy = try ConnectProxy(requiredAuthorization: "Basic nobody")
        defer { proxy.stop() }
        try await withTestServer { server in
            server.setDocument(FixtureDocument.bytes())
            let setting = HTTPProxy(host: "127.0.0.1", port: Int(proxy.port), username: "dev", password: "wrong")
            let (fetcher, transport) = try fetcher(server, proxy: setting)
            let error = await syncError { try await fetcher.fetch(ifNoneMatch: nil) }
            #expect(error?.kind == .network)
            #expect(
                error?.message.contains("proxy asked for credentials (407)") == true,
                "\(String(describing: error))"
            )
            #expect(error?.message.contains("wrong") == false)
            #expect(proxy.tunnels.count == 1)
            #expect(server.requests.isEmpty)
            await (transport as? AsyncHTTPClientTransport)?.shutdown()
        }
    }
}
