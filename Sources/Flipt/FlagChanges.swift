import FliptEngine

/// Which flags a snapshot replacement added, removed or changed.
///
/// Flags are compared by content: a flag whose JSON is the same in both snapshots (white space between tokens
/// aside) is unchanged even when it moved to another position in the document, and a change to a segment
/// changes every flag whose rules or rollouts use it (a snapshot embeds each segment in the flags that use it).
/// Keys are compared byte for byte, as evaluation compares them.
public struct FlagChanges: Sendable, Hashable {
    /// Keys of the flags that the new snapshot has and the previous one had not, in the new document's order.
    public var added: [String]
    /// Keys of the flags that the previous snapshot had and the new one has not, in the previous document's order.
    public var removed: [String]
    /// Keys of the flags that both snapshots have with different content, in the new document's order.
    public var changed: [String]

    /// Creates a set of changes.
    public init(added: [String] = [], removed: [String] = [], changed: [String] = []) {
        self.added = added
        self.removed = removed
        self.changed = changed
    }

    /// Whether no flag was added, removed or changed (the new snapshot has the same flags with the same content).
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    /// The keys of every added, changed and removed flag.
    public var flagKeys: [String] { added + changed + removed }

    /// How the flag with exactly this key changed, or nil when it did not.
    public func kind(of flagKey: String) -> FlagChange.Kind? {
        if added.contains(where: { $0.utf8.elementsEqual(flagKey.utf8) }) { return .added }
        if changed.contains(where: { $0.utf8.elementsEqual(flagKey.utf8) }) { return .changed }
        if removed.contains(where: { $0.utf8.elementsEqual(flagKey.utf8) }) { return .removed }
        return nil
    }

    /// The changes from the snapshot `previous` (nil: none) to `next`, by the content of each flag.
    static func between(previous: FlagFingerprints?, next: FlagFingerprints) -> FlagChanges {
        let difference = (previous ?? FlagFingerprints(document: emptyDocument)!).changes(to: next)
        func strings(_ keys: [[UInt8]]) -> [String] { keys.map { String(decoding: $0, as: UTF8.self) } }
        return FlagChanges(
            added: strings(difference.added),
            removed: strings(difference.removed),
            changed: strings(difference.changed)
        )
    }

    /// The changes between two snapshots whose documents could not be read flag by flag (never for a document the
    /// engine accepted): flags are added or removed by key, and every flag in both counts as changed.
    static func byKeys(previous: Snapshot?, next: Snapshot) -> FlagChanges {
        let old = previous?.flagKeys ?? []
        let new = next.flagKeys
        func contains(_ keys: [String], _ key: String) -> Bool { keys.contains { $0.utf8.elementsEqual(key.utf8) } }
        return FlagChanges(
            added: new.filter { !contains(old, $0) },
            removed: old.filter { !contains(new, $0) },
            changed: new.filter { contains(old, $0) }
        )
    }

    private static let emptyDocument = Array(#"{"namespace":{"key":""},"flags":[]}"#.utf8)
}

/// A change of one flag, delivered by ``FliptClient/changes(of:)``.
public struct FlagChange: Sendable, Hashable {
    /// How a flag changed.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The flag appeared.
        case added
        /// The flag's content changed (its rules, rollouts, variants, segments, state or description).
        case changed
        /// The flag disappeared; evaluating it now throws ``FliptError/Code/flagNotFound``.
        case removed
    }

    /// The key of the flag.
    public var flagKey: String
    /// How it changed.
    public var kind: Kind
    /// The client's status right after the snapshot that carried the change replaced the previous one.
    public var status: ClientStatus

    /// Creates a change.
    public init(flagKey: String, kind: Kind, status: ClientStatus) {
        self.flagKey = flagKey
        self.kind = kind
        self.status = status
    }
}

/// The changes of one flag, as an `AsyncSequence`; returned by ``FliptClient/changes(of:)``.
///
/// It receives the changes of every snapshot replacement from the moment ``FliptClient/changes(of:)`` was called
/// (changes that arrive before iteration begins are kept, up to the newest 256 replacements), and finishes when
/// the client closes. Iterate it from one task.
public struct FlagChangeSequence: AsyncSequence, Sendable {
    /// A change of the flag.
    public typealias Element = FlagChange
    /// The sequence never throws.
    public typealias Failure = Never

    let flagKey: String
    let events: AsyncStream<ClientEvent>

    /// Creates the iterator.
    public func makeAsyncIterator() -> Iterator {
        Iterator(flagKey: flagKey, events: events.makeAsyncIterator())
    }

    /// Reads the client's events and keeps the changes of the flag.
    public struct Iterator: AsyncIteratorProtocol {
        let flagKey: String
        var events: AsyncStream<ClientEvent>.AsyncIterator

        /// The next change of the flag, or nil once the client has closed.
        public mutating func next() async -> FlagChange? {
            while let event = await events.next() {
                if case .snapshotReplaced(let status, let changes) = event, let kind = changes.kind(of: flagKey) {
                    return FlagChange(flagKey: flagKey, kind: kind, status: status)
                }
            }
            return nil
        }
    }
}
