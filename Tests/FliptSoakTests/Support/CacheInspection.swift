import FliptEngine
import FliptStore
import Foundation

/// What the cache file held between two runs of the soak client, read the way `flipt-offline cache verify` does.
struct CacheInspection {
    /// The revision of the last good snapshot, or nil when the file (or the entry) does not exist yet.
    var lastGoodRevision: Int?
    /// Everything wrong with the file; empty when it is healthy.
    var problems: [String] = []

    /// Opens the file read-only, runs the integrity check and re-hashes every document, and decodes the last
    /// good snapshot. Files moved aside as damaged (`<cache>.corrupt-…`) count as problems.
    static func inspect(path: String, key: SnapshotKey) -> CacheInspection {
        var inspection = CacheInspection()
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for entry in entries where entry.hasPrefix(name + ".corrupt") {
            inspection.problems.append("the client moved a damaged cache file aside: \(entry)")
        }
        guard FileManager.default.fileExists(atPath: path) else { return inspection }
        do {
            let store = try SnapshotStore(path: path, options: SnapshotStore.Options(readOnly: true))
            if let reason = store.readOnlyReason, reason.contains("immutable") {
                inspection.problems.append(
                    "the cache could only be opened immutable (the -wal is invisible): \(reason)"
                )
            }
            let report = try store.verify()
            if !report.isHealthy {
                inspection.problems.append(
                    "verify: integrity \(report.integrityProblems), hash mismatches \(report.hashMismatches.count)"
                )
            }
            guard let lastGood = try store.lastGood(for: key) else { return inspection }
            do {
                let snapshot = try Snapshot(document: [UInt8](lastGood.document))
                if snapshot.namespaceKey != "default" {
                    inspection.problems.append("the last good snapshot is of namespace \(snapshot.namespaceKey)")
                }
            } catch {
                inspection.problems.append("the last good snapshot does not decode: \(error)")
            }
            guard let revision = SoakDocument.revision(of: lastGood.document) else {
                inspection.problems.append("the last good snapshot has no revision flag")
                return inspection
            }
            inspection.lastGoodRevision = revision
        } catch {
            inspection.problems.append("the cache cannot be read: \(error)")
        }
        return inspection
    }
}
