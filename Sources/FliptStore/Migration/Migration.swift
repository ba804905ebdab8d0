/// One step of the cache schema: a shipped `Migrations/NNNN_verb_object.sql` file embedded in the binary.
package struct Migration: Sendable, Hashable {
    /// The number in the file name (`1` for `0001_create_snapshots.sql`); migrations apply in this order.
    package let id: Int
    /// The file name without `.sql`.
    package let name: String
    /// The SHA-256 (lowercase hex) of the file's bytes, recorded in `schema_migrations` when applied.
    package let checksum: String
    /// The SQL text, byte for byte the file.
    package let sql: String

    /// Creates a migration (the generated `Migrations+Embedded.swift` and tests call this).
    package init(id: Int, name: String, checksum: String, sql: String) {
        self.id = id
        self.name = name
        self.checksum = checksum
        self.sql = sql
    }
}
