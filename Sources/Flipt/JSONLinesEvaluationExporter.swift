import FliptEngine
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An ``EvaluationHook`` that appends a record of every evaluation to a JSON-lines file, off the hot path: for
/// exposure logging, analytics and audit.
///
/// ```swift
/// let exporter = try JSONLinesEvaluationExporter(path: "/var/log/app/evaluations.jsonl")
/// var options = ClientOptions(url: "https://flipt.example.com")
/// options.hooks = [exporter]
/// let client = try FliptClient(options: options)
/// …
/// await client.shutdown()
/// exporter.close()  // writes what is still buffered
/// ```
///
/// An evaluation only copies its record into a bounded buffer under a lock; a thread of the exporter's own encodes
/// and writes the buffer every ``flushInterval``, or sooner when it is half full. When the buffer is full (the disk
/// is slower than the evaluations) new records are dropped and counted in ``droppedCount``, and the next write
/// adds a line `{"dropped":N,"time":"…"}` saying how many were lost there. ``flush()`` and ``close()`` write
/// everything buffered before they return, so nothing is lost on a normal shutdown; closing is also done when the
/// exporter is released.
///
/// Each line is one ``EvaluationRecord`` (keys sorted). The entity's properties are left out unless
/// `includesContext` is set: they often hold personal data.
public final class JSONLinesEvaluationExporter: EvaluationHook, @unchecked Sendable {
    // @unchecked: every mutable field lives in `buffer` (under its lock) or in `output` (under its own lock, taken
    // by the writer thread, flush() and close() in turn); the rest is immutable.

    /// The file the records are appended to.
    public let path: String
    /// How many records the buffer holds before new ones are dropped.
    public let capacity: Int
    /// How often the writer thread writes the buffer when it is less than half full.
    public let flushInterval: Duration
    /// Whether records carry the entity's properties.
    public let includesContext: Bool

    /// What an evaluation leaves in the buffer; made into an ``EvaluationRecord`` by the writer thread.
    struct Pending: Sendable {
        var namespace: String
        var flagKey: String
        var entityID: String
        var context: EvaluationContext?
        var flagType: FlagType
        var defaultValue: FlagValue?
        var time: EvaluationTimestamp
        var value: FlagValue?
        var reason: EvaluationReason?
        var error: FliptError?
        var source: DataSource
        var etag: String?
        var age: Duration?

        init(
            _ evaluation: borrowing EvaluationHookContext,
            includesContext: Bool,
            time: EvaluationTimestamp,
            value: FlagValue?,
            reason: EvaluationReason?,
            error: FliptError?
        ) {
            namespace = evaluation.namespace
            flagKey = evaluation.flagKey
            entityID = evaluation.entityID
            context = includesContext ? evaluation.context : nil
            flagType = evaluation.flagType
            defaultValue = evaluation.defaultValue
            self.time = time
            self.value = value
            self.reason = reason
            self.error = error
            let provenance = evaluation.provenance
            source = provenance.source
            etag = provenance.etag
            age = provenance.age
        }
    }

    private struct Buffer {
        var records: [Pending] = []
        var dropped = 0
        var droppedTotal = 0
        var written = 0
        var wakeRequested = false
        var phase = Phase.open
    }

    /// Where the exporter is in its life; it moves open → closing → closed, and never back.
    enum Phase: Equatable {
        /// Records are buffered and written.
        case open
        /// A close began: new records are dropped, the writer thread ends, the rest is written.
        case closing
        /// The file is closed.
        case closed

        /// A close request: returns whether this request closes (the first one does; the others find the
        /// exporter closing or closed and return at once).
        mutating func close() -> Bool {
            guard self == .open else { return false }
            self = .closing
            return true
        }

        /// The close has written everything and closed the file.
        mutating func finishClosing() {
            if self == .closing { self = .closed }
        }

        /// Whether records are taken.
        var accepts: Bool { self == .open }
    }

    private struct Output {
        var descriptor: Int32
        let encoder: JSONEncoder
    }

    private let buffer: Locked<Buffer>
    private let output: Locked<Output>
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Opens (or creates, owner-only) the file at `path` for appending and starts the writer thread.
    ///
    /// - Parameters:
    ///   - path: the JSON-lines file; records are appended to what it holds.
    ///   - capacity: how many records may wait for the writer before new ones are dropped (default 10,000).
    ///   - flushInterval: how often the writer writes when the buffer is less than half full (default 1 s).
    ///   - includesContext: whether records carry the entity's properties (default false: they may be personal).
    /// - Throws: ``FliptError/Code/invalidConfiguration`` when the file cannot be opened or `capacity` is not
    ///   positive.
    public init(
        path: String,
        capacity: Int = 10_000,
        flushInterval: Duration = .seconds(1),
        includesContext: Bool = false
    ) throws(FliptError) {
        guard capacity > 0 else {
            throw FliptError(.invalidConfiguration, "The exporter's capacity must be at least 1 record.")
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw FliptError(
                .invalidConfiguration,
                "Cannot open the evaluation log \(path) for appending: \(reason). Pass a writable path."
            )
        }
        self.path = path
        self.capacity = capacity
        self.flushInterval = flushInterval
        self.includesContext = includesContext
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        buffer = Locked(Buffer())
        output = Locked(Output(descriptor: descriptor, encoder: encoder))
        let thread = Thread { [buffer, output, wake, finished, flushInterval, includesContext] in
            Self.runWriter(
                buffer: buffer,
                output: output,
                wake: wake,
                interval: flushInterval,
                includesContext: includesContext
            )
            finished.signal()
        }
        thread.name = "flipt-evaluation-exporter"
        thread.start()
    }

    deinit {
        close()
    }

    // MARK: EvaluationHook

    /// The after and error stages, with the exact provenance of the snapshot that answered.
    public var stages: EvaluationHookStages { [.after, .error, .provenance] }

    /// Buffers the record of a successful evaluation.
    public func after(_ evaluation: borrowing EvaluationHookContext, result: some FlagEvaluationResult) {
        enqueue(
            Pending(
                evaluation,
                includesContext: includesContext,
                time: result.evaluatedAt,
                value: result.value,
                reason: result.reason,
                error: nil
            )
        )
    }

    /// Buffers the record of a failed evaluation, with its error and the caller's default, if any.
    public func error(_ evaluation: borrowing EvaluationHookContext, error: FliptError) {
        enqueue(
            Pending(
                evaluation,
                includesContext: includesContext,
                time: .now(),
                value: evaluation.defaultValue,
                reason: nil,
                error: error
            )
        )
    }

    // MARK: State

    /// How many records were dropped because the buffer was full, since the exporter was made.
    public var droppedCount: Int { buffer.withLock { $0.droppedTotal } }

    /// How many records were written to the file, since the exporter was made.
    public var writtenCount: Int { buffer.withLock { $0.written } }

    /// Writes every record buffered so far before returning.
    public func flush() {
        Self.drain(buffer: buffer, output: output, includesContext: includesContext)
    }

    /// Writes every record still buffered, stops the writer thread and closes the file; later records are
    /// dropped. Idempotent.
    public func close() {
        guard buffer.withLock({ $0.phase.close() }) else { return }
        wake.signal()
        finished.wait()
        Self.drain(buffer: buffer, output: output, includesContext: includesContext)
        output.withLock { output in
            if output.descriptor >= 0 { closeDescriptor(output.descriptor) }
            output.descriptor = -1
        }
        buffer.withLock { $0.phase.finishClosing() }
    }

    private func enqueue(_ record: consuming Pending) {
        // Moved into the buffer, not copied: a copy and the original's destruction retain and release each of
        // the record's strings once more.
        var taken: Pending? = consume record
        let signal = buffer.withLock { buffer -> Bool in
            if !buffer.phase.accepts || buffer.records.count >= capacity {
                buffer.dropped += 1
                buffer.droppedTotal += 1
                return false
            }
            buffer.records.append(taken.take()!)
            if buffer.records.count >= (capacity + 1) / 2 && !buffer.wakeRequested {
                buffer.wakeRequested = true
                return true
            }
            return false
        }
        if signal { wake.signal() }
    }

    // MARK: Writer

    private static func runWriter(
        buffer: Locked<Buffer>,
        output: Locked<Output>,
        wake: DispatchSemaphore,
        interval: Duration,
        includesContext: Bool
    ) {
        let nanoseconds = interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
        while true {
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(max(nanoseconds, 1_000_000))))
            drain(buffer: buffer, output: output, includesContext: includesContext)
            if !buffer.withLock({ $0.phase.accepts }) { return }
        }
    }

    /// Takes the buffered records and writes them; the output lock keeps the lines of two drains apart and in order.
    private static func drain(buffer: Locked<Buffer>, output: Locked<Output>, includesContext: Bool) {
        output.withLock { output in
            let (records, dropped) = buffer.withLock { buffer in
                let taken = (buffer.records, buffer.dropped)
                buffer.records.removeAll(keepingCapacity: true)
                buffer.dropped = 0
                buffer.wakeRequested = false
                return taken
            }
            guard output.descriptor >= 0, !records.isEmpty || dropped > 0 else { return }
            var bytes: [UInt8] = []
            for pending in records {
                let record = EvaluationRecord(pending, includesContext: includesContext)
                guard let line = try? output.encoder.encode(record) else { continue }
                bytes.append(contentsOf: line)
                bytes.append(0x0A)
            }
            if dropped > 0 {
                let time = EvaluationTimestamp.now().rfc3339
                bytes.append(contentsOf: "{\"dropped\":\(dropped),\"time\":\"\(time)\"}\n".utf8)
            }
            if writeAll(bytes, to: output.descriptor) {
                buffer.withLock { $0.written += records.count }
            }
        }
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let count = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += count
            }
            return true
        }
    }
}

/// One line of a ``JSONLinesEvaluationExporter`` file: one evaluation, its outcome and the snapshot's provenance.
public struct EvaluationRecord: Sendable, Hashable, Codable {
    /// When the evaluation happened, RFC 3339 in UTC.
    public var time: String
    /// The client's namespace.
    public var namespace: String
    /// The flag key, as the caller passed it.
    public var flag: String
    /// The entity the flag was evaluated for.
    public var entity: String
    /// `variant` or `boolean`: the type of flag the caller asked for.
    public var type: String
    /// The variant key (variant flags), or nil.
    public var variant: String?
    /// The value (boolean flags), or nil.
    public var enabled: Bool?
    /// The evaluation's reason (`match`, `default`, `flag_disabled`, `unknown`), or nil on error.
    public var reason: String?
    /// The error's code (``FliptError/Code``), or nil when the flag was evaluated.
    public var errorCode: String?
    /// The error's message, or nil when the flag was evaluated.
    public var errorMessage: String?
    /// Whether the caller's default was returned in place of the flag's value.
    public var isDefault: Bool
    /// The snapshot's source: `network`, `cache`, `seed` or `none`.
    public var source: String
    /// The snapshot's ETag, if it has one.
    public var etag: String?
    /// How old the snapshot was, in seconds, when the record was made; nil without data.
    public var ageSeconds: Double?
    /// The entity's properties, when the exporter includes them.
    public var context: [String: String]?

    enum CodingKeys: String, CodingKey {
        case time, namespace, flag, entity, type, variant, enabled, reason, source, etag, context
        case errorCode = "error_code"
        case errorMessage = "error_message"
        case isDefault = "default"
        case ageSeconds = "age_seconds"
    }

    init(_ pending: JSONLinesEvaluationExporter.Pending, includesContext: Bool) {
        let (value, reason, error) = (pending.value, pending.reason, pending.error)
        time = pending.time.rfc3339
        namespace = pending.namespace
        flag = pending.flagKey
        entity = pending.entityID
        type = pending.flagType == .variant ? "variant" : "boolean"
        switch value {
        case .variant(let key): variant = key
        case .boolean(let value): enabled = value
        case nil: break
        }
        self.reason = reason.map(EvaluationCounter.label)
        errorCode = error?.code.description
        errorMessage = error?.message
        isDefault = error != nil && value != nil
        source = pending.source.rawValue
        etag = pending.etag
        ageSeconds = pending.age.map { Double($0.components.seconds) + Double($0.components.attoseconds) * 1e-18 }
        if includesContext, let evaluationContext = pending.context {
            var properties: [String: String] = [:]
            for entry in evaluationContext.entries { properties[entry.key] = entry.value }
            context = properties
        }
    }
}

/// Closes a file descriptor (a free function: inside the exporter, `close` names its own method).
private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
