import FliptEngine

extension FliptClient {
    /// The changes of one flag, from now until the client closes: each snapshot replacement that adds, removes or
    /// changes the flag whose key has exactly these bytes yields one ``FlagChange``.
    ///
    /// ```swift
    /// for await change in client.changes(of: "new-checkout") {
    ///     print("new-checkout was \(change.kind)")
    /// }
    /// ```
    ///
    /// Flags are compared by content (see ``FlagChanges``). Every replacement, with all its changes, is also
    /// reported by ``events()`` as ``ClientEvent/snapshotReplaced(_:changes:)``.
    public func changes(of flagKey: String) -> FlagChangeSequence {
        FlagChangeSequence(flagKey: flagKey, events: core.events())
    }
}
