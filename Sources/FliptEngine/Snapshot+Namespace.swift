/// Why a document is not a usable snapshot of the namespace it was expected to hold.
package enum SnapshotRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// The engine does not accept the document.
    case undecodable(DocumentError)
    /// The document is a valid snapshot, of the namespace with this key.
    case otherNamespace(String)

    /// What is wrong, without what to do (each caller knows where the document came from and says that).
    package var description: String {
        switch self {
        case .undecodable(let error): "not a valid snapshot document (\(error))"
        case .otherNamespace(let found): "a snapshot of namespace \"\(found)\""
        }
    }
}

extension Snapshot {
    /// Decodes a document and checks that it is a snapshot of `namespace`: the one check every path that accepts
    /// a document makes (a fetch, a stream message, a seed, the cache, a rollback, an import).
    ///
    /// - Throws: ``SnapshotRejection/undecodable(_:)`` or ``SnapshotRejection/otherNamespace(_:)``.
    package convenience init(document: some Collection<UInt8>, namespace: String) throws(SnapshotRejection) {
        do {
            try self.init(document: document)
        } catch {
            throw .undecodable(error)
        }
        guard namespaceKey == namespace else { throw .otherNamespace(namespaceKey) }
    }
}
