import FliptSync
import FliptTestSupport
import Foundation
import Testing

@Suite("Configuration, URLs and TLS options")
struct ConfigurationTests {
    private let base = URL(string: "https://flipt.example.com/prefix/")!

    @Test("endpoint URLs keep the path prefix, drop the trailing slash and encode keys")
    func urls() {
        var configuration = SyncConfiguration(url: base, namespace: "a/b c", environment: "prod")
        configuration.reference = "v1.0+rc"
        #expect(
            configuration.snapshotURL.absoluteString
                == "https://flipt.example.com/prefix/internal/v1/evaluation/snapshot/namespace/a%2Fb%20c?reference=v1.0%2Brc"
        )
        #expect(
            configuration.streamURL.absoluteString
                == "https://flipt.example.com/prefix/client/v2/environments/prod/namespaces/a%2Fb%20c/stream"
        )
    }

    @Test("defaults match the official client where they should")
    func defaults() {
        let configuration = SyncConfiguration(url: base)
        #expect(configuration.namespace == "default")
        #expect(configuration.environment == "default")
        #expect(configuration.updateInterval == .seconds(120))
        #expect(configuration.fetchMode == .polling)
        #expect(configuration.requestTimeout == nil)
        #expect(
            configuration.retryPolicy
                == RetryPolicy(maximumRetries: 3, baseDelay: .seconds(1), maximumDelay: .seconds(30))
        )
    }

    @Test(
        "invalid settings fail at configuration time with advice",
        arguments: [
            "ftp://x", "https://", "https://h?x=1", "https://u:p@h", "http://h:99999", "http://h:0",
        ]
    )
    func invalidURL(text: String) throws {
        let url = try #require(URL(string: text))
        #expect(throws: SyncError.self) { try SyncConfiguration(url: url).validate() }
    }

    @Test("a port outside 1...65535 is named as such; the ports at the ends are fine")
    func portRange() throws {
        for text in ["http://h:65536", "http://h:0"] {
            let error = try #require(
                throws: SyncError.self,
                performing: { try SyncConfiguration(url: #require(URL(string: text))).validate() }
            )
            #expect(error.kind == .configuration)
            #expect(error.message.contains("is not a TCP port"), "\(error.message)")
        }
        for text in ["http://h:1", "http://h:65535", "http://h"] {
            #expect(throws: Never.self) { try SyncConfiguration(url: #require(URL(string: text))).validate() }
        }
    }

    @Test("other invalid values are configuration errors")
    func invalidValues() {
        let cases: [(inout SyncConfiguration) -> Void] = [
            { $0.namespace = "" }, { $0.environment = "" }, { $0.updateInterval = .zero },
            { $0.requestTimeout = .milliseconds(-1) }, { $0.jitter = 1.5 }, { $0.authentication = .clientToken("") },
            { $0.authentication = .jwt("a\nb") }, { $0.retryPolicy.maximumRetries = -1 },
        ]
        for mutate in cases {
            var configuration = SyncConfiguration(url: base)
            mutate(&configuration)
            do {
                try configuration.validate()
                Issue.record("expected a configuration error")
            } catch {
                #expect(error.kind == .configuration)
            }
        }
        var fine = SyncConfiguration(url: base)
        fine.requestTimeout = .milliseconds(250)
        fine.updateInterval = .milliseconds(100)
        #expect(throws: Never.self) { try fine.validate() }
    }

    @Test("an unreadable CA file or PEM without a certificate fails loudly, whatever the transport")
    func badTrustRoots() {
        for root in [TLSOptions.TrustRoot.pemFile("/nonexistent/ca.pem"), .pem("not a certificate")] {
            let options = TLSOptions(additionalTrustRoots: [root])
            var configuration = SyncConfiguration(url: base)
            configuration.tls = options
            var errors: [SyncError?] = [
                #expect(throws: SyncError.self) { try URLSessionTransport(tls: options) },
                #expect(throws: SyncError.self) { try SnapshotFetcher(configuration: configuration) },
            ]
            #if canImport(AsyncHTTPClient)
            errors.append(#expect(throws: SyncError.self) { try AsyncHTTPClientTransport(tls: options) })
            #endif
            for error in errors {
                #expect(error?.kind == .configuration)
                if case .pemFile = root {
                    #expect(
                        error?.message == "The CA certificate file /nonexistent/ca.pem cannot be read; check the path."
                    )
                } else {
                    #expect(error?.message.contains("BEGIN CERTIFICATE") == true)
                }
            }
        }
    }

    #if canImport(FoundationNetworking)
    @Test("on Linux, URLSessionTransport refuses extra CAs and skip-verify; SnapshotFetcher takes them")
    func linuxTLSOptions() throws {
        for options in [
            TLSOptions(additionalTrustRoots: [.pem(TestCertificates.caCertificate)]),
            TLSOptions(insecureSkipVerify: true),
        ] {
            let error = #expect(throws: SyncError.self) { try URLSessionTransport(tls: options) }
            #expect(error?.kind == .configuration)
            #expect(error?.message.contains("AsyncHTTPClientTransport") == true)
            var configuration = SyncConfiguration(url: base)
            configuration.tls = options
            #expect(throws: Never.self) { try SnapshotFetcher(configuration: configuration) }
            #if canImport(AsyncHTTPClient)
            #expect(throws: Never.self) { try AsyncHTTPClientTransport(tls: options) }
            #endif
        }
    }
    #endif
}
