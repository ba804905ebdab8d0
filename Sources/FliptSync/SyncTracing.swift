import Tracing

/// The sync's tracing (swift-distributed-tracing): a `flipt.sync.fetch` client span around each poll, retries
/// included, with the namespace, the URL, the outcome, the HTTP status and the bytes received.
///
/// The tracer is the one in force where the ``SyncLoop`` is made when that is not the no-op tracer (a caller's
/// `withTracer` scope, which the loop's own task would not inherit), else the one bootstrapped at the time of each
/// fetch. With neither, spans cost a no-op call per fetch. The span is the current context while the request runs,
/// so an HTTP client that traces its requests (async-http-client does with a tracer bootstrapped) nests its span
/// under it.
struct SyncTracing: Sendable {
    private let captured: (any Tracer)?

    init() {
        let tracer = Self.currentTracer()
        captured = tracer is NoOpTracer ? nil : tracer
    }

    /// The tracer in force now. With no instrument at all (the common case), the no-op tracer, without asking
    /// `InstrumentationSystem.tracer`: it asks whether the instrument conforms to `Tracer`, and the first failed
    /// conformance check of a process walks every conformance record of the binary (~230 µs of a 1,000-flag cold
    /// boot, perf over 40 boots). The check here compares the instrument's type only.
    private static func currentTracer() -> any Tracer {
        InstrumentationSystem.instrument is NoOpInstrument ? NoOpTracer() : InstrumentationSystem.tracer
    }

    /// Fetches with `fetcher` inside a span.
    func fetch(with fetcher: SnapshotFetcher, ifNoneMatch etag: String?) async throws(SyncError) -> FetchOutcome {
        let tracer = captured ?? Self.currentTracer()
        return try await Self.fetch(with: fetcher, ifNoneMatch: etag, tracer: tracer)
    }

    private static func fetch(
        with fetcher: SnapshotFetcher,
        ifNoneMatch etag: String?,
        tracer: some Tracer
    ) async throws(SyncError) -> FetchOutcome {
        let configuration = fetcher.configuration
        let span = tracer.startSpan("flipt.sync.fetch", ofKind: .client)
        defer { span.end() }
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["flipt.namespace"] = configuration.namespace
                attributes["http.request.method"] = "GET"
                attributes["url.full"] = configuration.snapshotURL.absoluteString
                attributes["flipt.conditional"] = etag != nil
            }
        }
        let outcome: Result<FetchOutcome, SyncError> = await InstrumentationContext.withValue(span.context) {
            do throws(SyncError) {
                return .success(try await fetcher.fetch(ifNoneMatch: etag))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(.modified(let fetched)):
            span.updateAttributes { attributes in
                attributes["flipt.result"] = "updated"
                attributes["http.response.status_code"] = fetched.status
                attributes["flipt.snapshot.bytes"] = fetched.document.count
                attributes["flipt.snapshot.flags"] = fetched.snapshot.flagCount
            }
            return .modified(fetched)
        case .success(.notModified(let current)):
            span.updateAttributes { attributes in
                attributes["flipt.result"] = "not_modified"
                attributes["http.response.status_code"] = 304
            }
            return .notModified(etag: current)
        case .failure(let error):
            span.updateAttributes { attributes in
                attributes["flipt.result"] = error.kind == .cancelled ? "cancelled" : "failed"
                attributes["error.type"] = error.errorClass
                if let status = error.httpStatus { attributes["http.response.status_code"] = status }
            }
            if error.kind != .cancelled {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error, message: error.message))
            }
            throw error
        }
    }
}
