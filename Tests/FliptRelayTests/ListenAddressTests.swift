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
}
