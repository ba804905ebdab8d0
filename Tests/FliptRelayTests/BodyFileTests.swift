import FliptTestSupport
import Foundation
import Testing

@testable import FliptRelay

/// Large bodies go out of an unlinked file with sendfile(2) on plain connections: the same bytes as from memory,
/// pipelined and after a change, and the file is closed once its snapshot is replaced and its answers are out.
@Suite("Relay body files", .serialized, .timeLimit(.minutes(1)))
struct BodyFileTests {
    static let v1 = "/internal/v1/evaluation/snapshot/namespace/default"

    static func served(revision: Int) -> ServedSnapshot {
        RelayFixtures.served(flagCount: 1_500, revision: revision)
    }

    /// The body files this process holds open now (the targets of `/proc/self/fd` links).
    static func openBodyFiles() -> Set<String> {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(
            descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
                .filter { $0.contains("flipt-relay-body.") }
        )
    }

    @Test("a large document goes out whole from a file, its gzip form from memory; the file closes after a change")
    func largeBodiesFromFiles() async throws {
        // The test keeps the bytes, not the snapshots: once replaced, nothing but answers being written holds them.
        let firstDocument = FixtureDocument.bytes(flagCount: 1_500, revision: 1)
        try #require(firstDocument.count >= BodyFiles.minimumSize)
        let catalog = SnapshotCatalog(snapshots: [Self.served(revision: 1)])
        let gzipForm = try #require(catalog.snapshot(namespace: "default", environments: [])?.prepareGzipForm())
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let before = Self.openBodyFiles()
            let clients = try (0..<4).map { _ in try RawHTTPClient(port: port) }
            for client in clients {
                try client.send(String(repeating: "GET \(Self.v1) HTTP/1.1\r\nHost: test\r\n\r\n", count: 2))
            }
            for client in clients {
                for _ in 0..<2 {
                    let response = try client.readResponse()
                    #expect(response.status == 200)
                    #expect(response.header("Content-Length") == String(firstDocument.count))
                    #expect(response.body == firstDocument)
                }
            }
            let made = Self.openBodyFiles().subtracting(before)
            #expect(made.count == 1, "one file for the document: \(made)")
            // In the first directory of the list (on a disk where there is one).
            let directory = try #require(BodyFile.directories().first)
            let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
            #expect(made.allSatisfy { $0.hasPrefix(resolved + "/flipt-relay-body.") }, "\(made) not in \(resolved)")

            // The gzip form: the same bytes as the compressed form in memory, from memory (this document
            // compresses far below the size for a file).
            try clients[0].get(Self.v1, headers: ["Accept-Encoding: gzip"])
            let compressed = try clients[0].readResponse()
            #expect(compressed.header("Content-Encoding") == "gzip")
            #expect(compressed.body == gzipForm)
            #expect(gzipForm.count < BodyFiles.minimumSize)
            #expect(Self.openBodyFiles().subtracting(before).count == 1)

            // HEAD sends no file.
            try clients[1].send("HEAD \(Self.v1) HTTP/1.1\r\nHost: test\r\n\r\n")
            let head = try clients[1].readResponse(isHead: true)
            #expect(head.header("Content-Length") == String(firstDocument.count))

            let secondDocument = FixtureDocument.bytes(flagCount: 1_500, revision: 2)
            catalog.replace(with: [Self.served(revision: 2)])
            for client in clients {
                try client.get(Self.v1)
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.body == secondDocument)
            }
            // The first snapshot's file closes; the second's stays open.
            let closed = await eventually(timeout: .seconds(20)) {
                Self.openBodyFiles().subtracting(before).count == 1
            }
            #expect(closed, "files open: \(Self.openBodyFiles().subtracting(before))")
        }
    }

    @Test("many connections on every event loop send the same file at once, each answer whole")
    func concurrentSends() async throws {
        let document = FixtureDocument.bytes(flagCount: 1_500, revision: 4)
        let catalog = SnapshotCatalog(snapshots: [Self.served(revision: 4)])
        try await RelayFixtures.withServer(catalog: catalog) { _, port in
            let clients = try (0..<16).map { _ in try RawHTTPClient(port: port) }
            for _ in 0..<3 {
                for client in clients {
                    try client.send(String(repeating: "GET \(Self.v1) HTTP/1.1\r\nHost: test\r\n\r\n", count: 4))
                }
                for client in clients {
                    for _ in 0..<4 {
                        let response = try client.readResponse()
                        #expect(response.status == 200)
                        #expect(response.body == document)
                    }
                }
            }
        }
    }

    @Test("body files go to a disk file system first, then /dev/shm; the mount table names each directory's type")
    func directoriesOnDiskFirst() async throws {
        // Whether a directory is in memory, by the mount table, checked against statfs(2) through stat(1).
        let memoryTypes = BodyFile.memoryFileSystems
        for path in ["/", "/proc/self/fd", "/dev/shm", FileManager.default.temporaryDirectory.path, "/var/tmp"]
        where FileManager.default.fileExists(atPath: path) {
            let type = try #require(BodyFile.fileSystemType(of: path), "\(path)")
            let stat = try ToolProcess(program: "stat", ["-f", "-c", "%T", path])
            #expect(await stat.waitForExit() == 0)
            let statType = stat.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(memoryTypes.contains(type) == memoryTypes.contains(statType), "\(path): \(type), stat \(statType)")
            if path == "/proc/self/fd" { #expect(type == "proc") }
        }
        let directories = BodyFile.directories()
        #expect(!directories.isEmpty)
        if FileManager.default.fileExists(atPath: "/dev/shm") { #expect(directories.contains("/dev/shm")) }
        // Where /var/tmp is on a disk, the first directory is.
        if BodyFile.fileSystemType(of: "/var/tmp").map({ !memoryTypes.contains($0) }) == true {
            let first = try #require(directories.first)
            #expect(!memoryTypes.contains(BodyFile.fileSystemType(of: first) ?? "tmpfs"), "\(directories)")
        }
    }

    @Test("over TLS a large document goes out from memory, whole")
    func largeBodiesOverTLS() async throws {
        let served = Self.served(revision: 3)
        try await withTemporaryDirectory { directory in
            var configuration = RelayServer.Configuration()
            RelaySecurity(tls: try RelaySecurityTests.serverTLS(in: directory).context, tokens: nil)
                .apply(to: &configuration)
            try await RelayFixtures.withServer(
                catalog: SnapshotCatalog(snapshots: [served]),
                configuration: configuration
            ) { _, port in
                let client = try await TLSTestClient.connect(port: port)
                try await client.get(Self.v1)
                let response = try await client.response()
                #expect(response.status == 200)
                #expect(response.body == served.document)
            }
        }
    }
}

extension ServedSnapshot {
    /// The gzip form of the document, compressed now if it was not, as bytes.
    fileprivate func prepareGzipForm() -> [UInt8] {
        prepareGzip()
        return gzip.valueIfReady.map { Array($0.document.readableBytesView) } ?? []
    }
}
