/// Runs an operation against a total deadline measured on an injected clock.
enum Deadline {
    /// Runs `operation`; if `timeout` passes first, cancels it and throws a ``SyncError/Kind/timeout`` error.
    static func run<Value: Sendable>(
        _ timeout: Duration,
        clock: any Clock<Duration>,
        url: String,
        operation: @escaping @Sendable () async throws(SyncError) -> Value
    ) async throws(SyncError) -> Value {
        let result: Result<Value, SyncError>? = await withTaskGroup(of: Result<Value, SyncError>?.self) { group in
            group.addTask {
                do throws(SyncError) {
                    return .success(try await operation())
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // nil means the deadline passed; a cancelled sleep means the caller is going away.
                do {
                    try await clock.sleep(for: timeout)
                    return nil
                } catch {
                    return .failure(.cancelled(url: url))
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let result else {
            throw SyncError(
                .timeout,
                "The request to \(url) did not complete within the request timeout of \(timeout). It is retried; "
                    + "if it keeps happening, raise requestTimeout or check the server.",
                url: url
            )
        }
        return try result.get()
    }
}
