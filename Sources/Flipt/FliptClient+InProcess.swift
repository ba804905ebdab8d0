extension FliptClient {
    /// Replaces the snapshot in use with `document`, as a fetched snapshot replaces it: the namespace is checked,
    /// waiters are resumed, and subscribers get ``ClientEvent/snapshotReplaced(_:changes:)`` and the per-flag
    /// changes. The source is ``DataSource/seed``; nothing is written to a cache.
    ///
    /// For `FliptTesting`, whose clients are fed in process (``ClientOptions/isFedInProcess``).
    /// - Throws: ``FliptError/Code/invalidSnapshot`` for a document that is not a valid snapshot of the
    ///   client's namespace, ``FliptError/Code/closed`` after ``close()``.
    @discardableResult
    package func replaceSnapshot(with document: [UInt8]) throws(FliptError) -> FlagChanges {
        try core.replaceInProcess(document: document)
    }
}
