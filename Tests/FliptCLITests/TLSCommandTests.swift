#if canImport(NIOSSL)
import FliptTestSupport
import Foundation
import Testing

@Suite("flipt-offline over TLS")
struct TLSCommandTests {
    @Test("sync trusts a private CA with --ca-cert; without it the failure says to use --ca-cert")
    func syncWithCACertificate() async throws {
        try await withWorkspace { workspace in
            let forwarder = try TLSForwarder(to: workspace.server)
            defer { forwarder.stop() }
            let caFile = workspace.path("ca.pem")
            try TestCertificates.caCertificate.write(toFile: caFile, atomically: true, encoding: .utf8)
            let target = [
                "sync", "--cache", workspace.cache, "--url", forwarder.baseURL.absoluteString, "--retries", "0",
            ]

            let untrusted = try await workspace.tool(target)
            #expect(untrusted.status == 20, "\(untrusted)")
            #expect(untrusted.stderr.contains("--ca-cert"), "\(untrusted.stderr)")
            #expect(workspace.server.requests.isEmpty)

            let trusted = try await workspace.tool(target + ["--ca-cert", caFile])
            #expect(trusted.status == 0, "\(trusted)")
            #expect(trusted.stdout.hasPrefix("updated: new snapshot stored as generation 1"), "\(trusted.stdout)")
            #expect(forwarder.statistics.handshakes == 1)

            let unverified = try await workspace.tool(target + ["--insecure-skip-verify"])
            #expect(unverified.status == 0, "\(unverified)")
            #expect(unverified.stdout.hasPrefix("not modified"), "\(unverified.stdout)")
            #expect(workspace.server.requests.map { $0.header("If-None-Match") } == [nil, workspace.server.digest()])

            let wrongFile = try await workspace.tool(target + ["--ca-cert", workspace.path("missing.pem")])
            #expect(wrongFile.status == 64, "\(wrongFile)")
            #expect(wrongFile.stderr.contains("missing.pem"), "\(wrongFile.stderr)")
        }
    }
}
#endif
