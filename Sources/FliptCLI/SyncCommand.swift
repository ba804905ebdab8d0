import ArgumentParser
import Flipt
import FliptEngine
import FliptStore
import FliptSync
import Foundation

/// `flipt-offline sync`: one conditional fetch into the cache.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Fetch the namespace's snapshot once into the cache (a conditional GET).",
        discussion: """
            Sends one request to the snapshot endpoint with If-None-Match set to the ETag of the cached last \
            good snapshot. A new, valid snapshot is stored as the next generation and becomes the last good \
            one; a 304 records that the cached one is still current. On any failure the cache keeps its last \
            good snapshot untouched; only a row in the sync-attempt log is added. Network errors, timeouts, \
            408, 429 and 5xx answers are retried (--retries) with jittered back-off. An attempt whose connection \
            stays silent for --idle-timeout (60 s) fails as a timeout, so a server that stops answering cannot \
            hang the command; a slow but steady download is not cut (--request-timeout bounds a whole attempt).

            Prints one line: what happened, the generation, ETag, flag count, size and age (or, with --json, \
            one JSON object on standard output). Errors go to standard error. The credential comes from \
            $FLIPT_CLIENT_TOKEN / $FLIPT_JWT or --client-token-file / --jwt-file and is never printed or stored.

            Examples:
              flipt-offline sync --url https://flipt.example.com --namespace production
              FLIPT_CLIENT_TOKEN=... flipt-offline sync --url https://flipt.internal --json
              flipt-offline sync --url http://flipt:8080 --client-token-file ./token

            Exit status:
              0   a new snapshot was stored (200), or the cached one is current (304)
              10  not modified (304), with --detailed-exit-codes only
              20  the server could not be reached, or did not answer in time
              21  the server answered an HTTP error (not 401/403), or a forbidden answer
              22  the server rejected the credential (401/403)
              23  the server sent a document that is not a valid snapshot of the namespace
              30  the cache file cannot be opened or written
              64  invalid command line or options (or an unreadable credential file)
            """
    )

    @OptionGroup(title: "Cache")
    var cache: CacheOptionGroup

    @OptionGroup(title: "Client options")
    var client: ClientOptionGroup

    @Option(name: .long, help: "Retries of a failed request (network errors, timeouts, 408, 429, 5xx).")
    var retries = 3

    @Option(
        name: .long,
        help: "Give up on a connection that sends nothing this long, e.g. 30s, 5m (a longer --request-timeout wins)."
    )
    var idleTimeout = DurationArgument(.seconds(60), text: "60s")

    @ArgumentParser.Flag(name: .long, help: "Print one JSON object instead of a line.")
    var json = false

    @ArgumentParser.Flag(
        name: .long,
        help: "Exit 10 instead of 0 when the cache did not change (a 304, or the document a rollback holds off)."
    )
    var detailedExitCodes = false

    func validate() throws {
        guard (0...10).contains(retries) else { throw ValidationError("--retries must be between 0 and 10.") }
    }

    func run() async throws {
        try await CommandFailure.reporting("sync") {
            let status = try await sync()
            if status != ExitStatus.success { throw ExitCode(status) }
        }
    }

    /// What a sync did, for both output forms.
    private struct Report {
        var outcome: SyncAttempt.Outcome
        var key: SnapshotKey
        var lastGood: SnapshotMetadata?
        var flags: Int?
        var newGeneration = false
        /// A rollback pin held the fetched document off (it is the content an operator rolled back from).
        var heldByRollback = false
        var httpStatus: Int?
        var errorClass: String?
        var error: String?
        var duration: Duration
        var status: Int32

        func jsonText(now: Date) -> String {
            var members: [(String, JSONValue)] = [
                ("outcome", .string(heldByRollback ? "held" : outcome.rawValue)), ("exit_status", .int(Int(status))),
            ]
            members += key.jsonMembers
            members += [
                ("http_status", .optional(httpStatus)), ("error_class", .optional(errorClass)),
                ("error", .optional(error)), ("duration_ms", .int(Describe.milliseconds(duration))),
                ("new_generation", .bool(newGeneration)),
            ]
            if let lastGood {
                members.append(("last_good", .object(lastGood.jsonMembers(flags: flags, now: now))))
            } else {
                members.append(("last_good", .null))
            }
            return JSONValue.object(members).text
        }

        func line(now: Date) -> String {
            let described = lastGood.map { metadata in
                let flagText = flags.map { "\($0) flags" } ?? "flags unknown"
                return "etag \(Describe.etag(metadata.etag)), \(flagText), \(Describe.size(metadata.size)), "
                    + "fetched \(Describe.timeAndAge(metadata.fetchedAt, now: now))"
            }
            switch outcome {
            case .updated where heldByRollback:
                let generation = lastGood.map { "generation \($0.generation)" } ?? "the pinned generation"
                return "held: the server still sends the snapshot an operator rolled back from; \(generation) stays "
                    + "the last good snapshot of \(key), pinned (\(described ?? "")); `flipt-offline cache unpin` "
                    + "accepts the server's snapshot"
            case .updated:
                let generation = lastGood.map { "generation \($0.generation)" } ?? "a snapshot"
                let what =
                    newGeneration
                    ? "new snapshot stored as \(generation)"
                    : "the server resent the cached content; \(generation) confirmed"
                return "updated: \(what) for \(key) (\(described ?? ""))"
            case .notModified:
                let generation = lastGood.map { "generation \($0.generation)" } ?? "the cached snapshot"
                return "not modified: \(generation) is current for \(key) (\(described ?? ""))"
            case .failed, .rejected:
                let kept =
                    lastGood.map {
                        "the cache was not changed: generation \($0.generation) (\(described ?? "")) stays the last "
                            + "good snapshot"
                    } ?? "the cache holds no snapshot for \(key) yet"
                return "\(error ?? "the sync failed") — \(kept)"
            }
        }
    }

    private func sync() async throws -> Int32 {
        var options = try client.clientOptions(cachePath: cache.path)
        options.retryPolicy = RetryPolicy(maximumRetries: retries)
        let layer: SnapshotSync
        do {
            layer = try SnapshotSync(namespace: client.namespace, options: options) {
                (configuration) throws(SyncError) in
                // A one-shot command must end: a connection silent for --idle-timeout fails the attempt (never
                // sooner than an explicit --request-timeout), while a slow but steady download goes on.
                let idle = max(idleTimeout.duration, configuration.requestTimeout ?? .zero)
                return try SnapshotFetcher.defaultTransport(for: configuration, idleTimeout: idle)
            }
        } catch {
            throw CommandFailure(ExitStatus.usage, error.message)
        }
        let key = layer.key
        let store = try cache.openForWriting()
        let round: SnapshotSync.Round
        do {
            round = try await layer.syncOnce(into: store)
        } catch {
            throw CommandFailure.cache(error, doing: "read the last good snapshot")
        }
        let previous = round.previous
        func previousFlags() -> Int? { previous.flatMap { Describe.flagCount($0.document) } }
        let report: Report
        switch round.event {
        case .updated(let fetched):
            let metadata: SnapshotMetadata?
            do {
                metadata = try round.written.get()
            } catch {
                throw CommandFailure.cache(error, doing: "store the fetched snapshot (the cache was not changed)")
            }
            let held = metadata?.isPinned ?? false
            report = Report(
                outcome: .updated,
                key: key,
                lastGood: metadata,
                flags: held ? previousFlags() : fetched.snapshot.flagCount,
                newGeneration: metadata?.generation != previous?.generation,
                heldByRollback: held,
                httpStatus: fetched.status,
                duration: round.timing.duration,
                status: held && detailedExitCodes ? ExitStatus.notModified : ExitStatus.success
            )
        case .unchanged:
            let metadata: SnapshotMetadata?
            do {
                metadata = try round.written.get()
            } catch {
                throw CommandFailure.cache(error, doing: "record the 304")
            }
            report = Report(
                outcome: .notModified,
                key: key,
                lastGood: metadata,
                flags: previousFlags(),
                httpStatus: 304,
                duration: round.timing.duration,
                status: detailedExitCodes ? ExitStatus.notModified : ExitStatus.success
            )
        case .failed(let error):
            if case .failure(let problem) = round.written {
                Terminal.note("note: the failed attempt could not be logged in the cache (\(problem.message))")
            }
            report = Report(
                outcome: SnapshotSync.attemptOutcome(of: error),
                key: key,
                lastGood: previous?.metadata,
                flags: previousFlags(),
                httpStatus: error.httpStatus,
                errorClass: error.errorClass,
                error: error.description,
                duration: round.timing.duration,
                status: error.exitStatus
            )
        case .streamConnected, .streamEnded:
            preconditionFailure("a single fetch reports no stream event")
        }
        let now = Date()
        if json { Terminal.line(report.jsonText(now: now)) }
        switch report.outcome {
        case .updated, .notModified:
            if !json { Terminal.line(report.line(now: now)) }
        case .failed, .rejected:
            Terminal.error(report.line(now: now), command: "sync")
        }
        return report.status
    }
}

extension SyncError {
    /// The exit status of `sync` for this failure.
    var exitStatus: Int32 {
        switch kind {
        case .network, .timeout, .cancelled: ExitStatus.network
        case .httpStatus, .unexpectedResponse, .streamError: ExitStatus.httpError
        case .authentication: ExitStatus.authentication
        case .badDocument: ExitStatus.badDocument
        case .configuration: ExitStatus.usage
        }
    }
}
