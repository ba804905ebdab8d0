import Foundation
import Testing

@testable import FliptStore

/// The byte-by-byte form of plain server URLs must store exactly the key `URLComponents` gives: a different key
/// would hide every snapshot an earlier version cached.
@Suite("Snapshot keys")
struct SnapshotKeyTests {
    static let schemes = ["http", "https", "HTTPS", "HtTp"]
    static let hosts = [
        "flipt.example.com", "Flipt.Example.COM", "127.0.0.1", "localhost", "h", "a-b.c", "x..y", "-a", "a.", "a_b",
        "xn--bcher-kva.example", "b\u{FC}cher.example", "[::1]", "user:pw@h", "h%41",
    ]
    static let ports = ["", ":8080", ":1", ":65535", ":0", ":08080", ":65536", ":", ":123456", ":8a"]
    static let paths = [
        "", "/", "//", "/prefix", "/prefix/", "/prefix//", "/a/./b", "/a/../b", "/~u", "/a_b-c.d", "/x//y//", "/a%20b",
        "/a b", "?q=1", "/p?token=secret#frag", "#f", "/p;x", "/P/Q",
    ]

    @Test("plain URLs normalise byte by byte exactly as through URLComponents")
    func plainFormMatchesComponents() {
        var plain = 0
        for scheme in Self.schemes {
            for host in Self.hosts {
                for port in Self.ports {
                    for path in Self.paths {
                        let text = "\(scheme)://\(host)\(port)\(path)"
                        guard let url = URL(string: text), let fast = SnapshotKey.plainForm(url.absoluteString) else {
                            continue
                        }
                        plain += 1
                        #expect(fast == SnapshotKey.normalizedByComponents(url), "\(text)")
                    }
                }
            }
        }
        // The corpus exercises the byte-by-byte form, not only the fallback.
        #expect(plain > 500, "\(plain) plain URLs")
        #expect(
            SnapshotKey.plainForm("https://Flipt.Example.com:8443/prefix/") == "https://flipt.example.com:8443/prefix"
        )
        for text in [
            "https://user:pw@h/", "http://h/?q", "http://h/a%20b", "http://[::1]:8080", "http://b\u{FC}cher.de",
        ] {
            #expect(SnapshotKey.plainForm(text) == nil, "\(text)")
        }
    }
}
