import Foundation
import Testing

@testable import FliptStore

/// The migrations built into the binary must be byte for byte the files in `Migrations/`.
@Suite("Embedded migrations")
struct MigrationEmbeddingTests {
    static let regenerate = "run Tests/Scripts/generate-embedded-migrations.sh and commit the result"

    static var migrationsDirectory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // FliptStoreTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // package root
            .appendingPathComponent("Migrations")
    }

    @Test("the embedded copy matches Migrations/ exactly")
    func matchesDirectory() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.migrationsDirectory.path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        #expect(!files.isEmpty, "no migrations found in \(Self.migrationsDirectory.path)")
        let embedded = Migration.embedded
        #expect(
            embedded.map { $0.name + ".sql" } == files,
            "Migrations/ and the embedded list differ: \(Self.regenerate)"
        )
        for migration in embedded {
            let bytes = try Data(
                contentsOf: Self.migrationsDirectory.appendingPathComponent(migration.name + ".sql")
            )
            #expect(
                Data(migration.sql.utf8) == bytes,
                "\(migration.name).sql differs from its embedded copy: \(Self.regenerate)"
            )
            #expect(
                migration.checksum == SHA256.hex(bytes),
                "the embedded checksum of \(migration.name) is stale: \(Self.regenerate)"
            )
        }
    }

    @Test("migrations are numbered 1, 2, 3… with NNNN_verb_object names")
    func numbering() throws {
        let embedded = Migration.embedded
        #expect(embedded.map(\.id) == Array(1...embedded.count))
        for migration in embedded {
            let prefix = String(format: "%04d_", migration.id)
            #expect(migration.name.hasPrefix(prefix), "\(migration.name) should start with \(prefix)")
            #expect(migration.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" })
        }
    }
}
