import Testing

@testable import FliptRelay

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test("host:port, [v6]:port and a bare port parse; malformed text does not")
    func parsing() {
        #expect(ListenAddress(parsing: "127.0.0.1:8080") == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(ListenAddress(parsing: "[::1]:9000") == ListenAddress(host: "::1", port: 9000))
        #expect(ListenAddress(parsing: "8081") == ListenAddress(host: "127.0.0.1", port: 8081))
        #expect(ListenAddress(parsing: "0.0.0.0:0")?.url == "http://127.0.0.1:0")
        for bad in ["", ":80", "host", "host:", "host:99999", "::1:80", "[::1]80", "[::1"] {
            #expect(ListenAddress(parsing: bad) == nil, "\(bad)")
        }
        #expect(ListenAddress(host: "::1", port: 80).description == "[::1]:80")
    }

    @Test(
        "loopback: localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x; not wildcards, other addresses or names",
        arguments: [
            ("127.0.0.1", true), ("127.8.9.10", true), ("localhost", true), ("LocalHost", true), ("::1", true),
            ("0:0:0:0:0:0:0:1", true), ("::ffff:127.0.0.1", true), ("0.0.0.0", false), ("::", false),
            ("192.168.1.20", false), ("10.0.0.1", false), ("128.0.0.1", false), ("::2", false),
            ("::ffff:10.0.0.1", false), ("fe80::1", false), ("relay.example", false), ("localhost.example", false),
        ]
    )
    func loopback(host: String, isLoopback: Bool) {
        #expect(ListenAddress(host: host, port: 8080).isLoopback == isLoopback)
    }

    @Test("the https URL of an address")
    func httpsURL() {
        #expect(ListenAddress(host: "0.0.0.0", port: 8443).url(scheme: "https") == "https://127.0.0.1:8443")
        #expect(ListenAddress(host: "::1", port: 8443).url(scheme: "https") == "https://[::1]:8443")
    }
}
