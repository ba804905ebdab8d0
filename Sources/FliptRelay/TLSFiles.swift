import Crypto
import FliptStore
import Foundation
import NIOSSL
import Synchronization
import _CryptoExtras

/// The PEM files of the relay's TLS identity, and the server `NIOSSLContext` they make.
///
/// The chain file holds the server certificate first, then any intermediates; the key file its unencrypted
/// private key. With a client CA file, every client must present a certificate signed by one of its certificates
/// (host names are not checked: clients have none to check). The context accepts TLS 1.2 and later.
///
/// ``load(now:)`` checks what BoringSSL would only report as an opaque failure, each with the file named: a file
/// that cannot be read, is not PEM, or holds no certificate (or no key); a key that is encrypted or is not the
/// certificate's. A certificate that has expired, or is not valid yet, or expires within
/// ``expiryWarningInterval``, is a warning, not an error: the relay still starts, and says so.
package struct TLSFiles: Sendable, Hashable {
    /// The PEM certificate chain: the server certificate first.
    package var certificateChainPath: String
    /// The PEM private key of the server certificate, unencrypted.
    package var privateKeyPath: String
    /// The PEM certificates that sign acceptable client certificates; nil to accept clients without one.
    package var clientCAPath: String?

    /// How close to its expiry a certificate draws a warning: 14 days.
    package static let expiryWarningInterval: TimeInterval = 14 * 24 * 3_600

    /// Names the files.
    package init(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
    }

    /// What loading the files produced: the context to serve with, and what to tell the operator.
    package struct Loaded: Sendable {
        /// The server context: hand it to each accepted connection's `NIOSSLServerHandler`.
        package let context: NIOSSLContext
        /// The configuration the context was made from.
        package let configuration: TLSConfiguration
        /// The server certificate's end of validity.
        package let notValidAfter: Date
        /// Problems that do not stop the relay (an expired certificate, for example), one sentence each.
        package let warnings: [String]
    }

    /// Reads and checks the files and builds the server context.
    ///
    /// - Parameter now: the time validity is judged at.
    /// - Throws: ``TLSFilesError`` naming the file at fault and what is wrong with it.
    package func load(now: Date = Date()) throws(TLSFilesError) -> Loaded {
        let chainText = try Self.read(certificateChainPath, what: "certificate chain")
        let chain = try Self.certificates(in: chainText, path: certificateChainPath, what: "certificate chain")
        let keyText = try Self.read(privateKeyPath, what: "private key")
        let key = try Self.privateKey(in: keyText, path: privateKeyPath)
        try Self.checkMatch(
            certificate: chain[0],
            keyText: keyText,
            chainPath: certificateChainPath,
            keyPath: privateKeyPath
        )

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAPath {
            let caText = try Self.read(clientCAPath, what: "client CA")
            let authorities = try Self.certificates(in: caText, path: clientCAPath, what: "client CA")
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(authorities)
            // Tell clients which CAs are accepted, so that one with several certificates can pick.
            configuration.sendCANameList = true
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFilesError(
                path: privateKeyPath,
                reason: "the TLS context could not be built from this key and \(certificateChainPath) (\(error))"
            )
        }

        let notValidAfter = Date(timeIntervalSince1970: TimeInterval(chain[0].notValidAfter))
        let notValidBefore = Date(timeIntervalSince1970: TimeInterval(chain[0].notValidBefore))
        var warnings: [String] = []
        let stamp = ISO8601DateFormatter()
        if notValidAfter <= now {
            warnings.append(
                "The certificate in \(certificateChainPath) expired on \(stamp.string(from: notValidAfter)); "
                    + "clients will refuse it until it is renewed."
            )
        } else if notValidBefore > now {
            warnings.append(
                "The certificate in \(certificateChainPath) is not valid until \(stamp.string(from: notValidBefore)); "
                    + "clients will refuse it until then. Check the clock."
            )
        } else if notValidAfter.timeIntervalSince(now) < Self.expiryWarningInterval {
            warnings.append(
                "The certificate in \(certificateChainPath) expires on \(stamp.string(from: notValidAfter)); "
                    + "renew it and reload."
            )
        }
        return Loaded(
            context: context,
            configuration: configuration,
            notValidAfter: notValidAfter,
            warnings: warnings
        )
    }

    // MARK: - Reading

    private static func read(_ path: String, what: String) throws(TLSFilesError) -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TLSFilesError(
                path: path,
                reason: "the \(what) file could not be read (\(FileReadFailure.reason(path: path, error: error)))"
            )
        }
        guard let text = String(data: data, encoding: .utf8), text.contains("-----BEGIN ") else {
            throw TLSFilesError(
                path: path,
                reason: "the \(what) file is not PEM (no -----BEGIN line); a DER file can be converted with "
                    + "`openssl x509 -inform der` (certificates) or `openssl pkey -inform der` (keys)"
            )
        }
        return text
    }

    /// The PEM blocks of a text: their labels (such as `CERTIFICATE`) and whole text, BEGIN and END lines included.
    static func pemBlocks(in text: String) -> [(label: String, text: String)] {
        var blocks: [(label: String, text: String)] = []
        var label: String?
        var lines: [Substring] = []
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if label == nil, trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----") {
                label = String(trimmed.dropFirst("-----BEGIN ".count).dropLast(5))
                lines = [Substring(trimmed)]
            } else if let current = label {
                lines.append(Substring(trimmed))
                if trimmed == "-----END \(current)-----" {
                    blocks.append((current, lines.joined(separator: "\n") + "\n"))
                    label = nil
                }
            }
        }
        return blocks
    }

    private static func certificates(
        in text: String,
        path: String,
        what: String
    ) throws(TLSFilesError) -> [NIOSSLCertificate] {
        let blocks = pemBlocks(in: text)
        let certificateBlocks = blocks.filter { $0.label == "CERTIFICATE" || $0.label == "TRUSTED CERTIFICATE" }
        guard !certificateBlocks.isEmpty else {
            let found = Set(blocks.map(\.label)).sorted().joined(separator: ", ")
            throw TLSFilesError(
                path: path,
                reason: "the \(what) file holds no certificate (no CERTIFICATE block"
                    + (found.isEmpty ? ")" : "; it holds \(found))")
            )
        }
        var certificates: [NIOSSLCertificate] = []
        for (index, block) in certificateBlocks.enumerated() {
            do {
                certificates.append(contentsOf: try NIOSSLCertificate.fromPEMBytes(Array(block.text.utf8)))
            } catch {
                throw TLSFilesError(
                    path: path,
                    reason: "certificate \(index + 1) of the \(what) file is not a valid X.509 certificate (\(error))"
                )
            }
        }
        return certificates
    }

    private static func privateKey(in text: String, path: String) throws(TLSFilesError) -> NIOSSLPrivateKey {
        let blocks = pemBlocks(in: text)
        if blocks.contains(where: { $0.label == "ENCRYPTED PRIVATE KEY" })
            || (text.contains("Proc-Type: 4,ENCRYPTED") && blocks.contains { $0.label.hasSuffix("PRIVATE KEY") })
        {
            throw TLSFilesError(
                path: path,
                reason: "the private key is encrypted with a passphrase, which the relay cannot ask for; decrypt "
                    + "it once with `openssl pkey -in KEY -out PLAIN` and keep PLAIN readable by the relay only"
            )
        }
        let keyBlocks = blocks.filter { $0.label.hasSuffix("PRIVATE KEY") }
        guard let block = keyBlocks.first else {
            let found = Set(blocks.map(\.label)).sorted().joined(separator: ", ")
            throw TLSFilesError(
                path: path,
                reason: "the private key file holds no private key (no PRIVATE KEY block"
                    + (found.isEmpty ? ")" : "; it holds \(found))")
            )
        }
        guard keyBlocks.count == 1 else {
            throw TLSFilesError(path: path, reason: "the private key file holds \(keyBlocks.count) keys; keep one")
        }
        do {
            return try NIOSSLPrivateKey(bytes: Array(block.text.utf8), format: .pem)
        } catch {
            throw TLSFilesError(path: path, reason: "the private key file's key could not be read (\(error))")
        }
    }

    /// Fails unless the key's public key is the certificate's (for EC P-256/384/521 and RSA keys; other kinds are
    /// left to BoringSSL when the context is built).
    private static func checkMatch(
        certificate: NIOSSLCertificate,
        keyText: String,
        chainPath: String,
        keyPath: String
    ) throws(TLSFilesError) {
        guard let block = pemBlocks(in: keyText).first(where: { $0.label.hasSuffix("PRIVATE KEY") }),
            let keyPublic = publicKeyInfo(ofPrivateKeyPEM: block.text)
        else { return }
        let certificatePublic = try? certificate.extractPublicKey().toSPKIBytes()
        guard certificatePublic == keyPublic else {
            throw TLSFilesError(
                path: keyPath,
                reason: "the private key does not belong to the first certificate of \(chainPath) (their package "
                    + "keys differ); give the key the certificate was issued for, and the server certificate first "
                    + "in the chain"
            )
        }
    }

    /// The SubjectPublicKeyInfo (DER) of a PEM private key, for the key kinds swift-crypto reads.
    static func publicKeyInfo(ofPrivateKeyPEM pem: String) -> [UInt8]? {
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? P521.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            return Array(key.publicKey.derRepresentation)
        }
        return nil
    }
}

/// TLS files that cannot be used: the file at fault and what is wrong with it.
package struct TLSFilesError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file at fault.
    package var path: String
    /// What is wrong, in a sentence.
    package var reason: String

    /// Creates an error.
    package init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `PATH: reason.`
    package var description: String { "\(path): \(reason)." }
}

/// The relay's TLS context, re-made from its files on ``reload()`` (on SIGHUP, say).
///
/// Connections take ``context`` when they are accepted, so a reload changes what new connections get and leaves
/// open ones (streams included) as they are. A reload that fails keeps the context in use and throws, for the
/// caller to log.
package final class ReloadableTLSContext: Sendable {
    /// The files.
    package let files: TLSFiles
    private let current: Mutex<TLSFiles.Loaded>

    /// Loads the files.
    ///
    /// - Throws: ``TLSFilesError`` naming the file at fault.
    package init(files: TLSFiles) throws(TLSFilesError) {
        self.files = files
        current = Mutex(try files.load())
    }

    /// The context for a new connection.
    package var context: NIOSSLContext {
        current.withLock { $0.context }
    }

    /// What the last successful load produced (its warnings, the certificate's end of validity).
    package var loaded: TLSFiles.Loaded {
        current.withLock { $0 }
    }

    /// Re-reads the files and uses the new context for new connections; on error the context in use stays.
    ///
    /// - Returns: the new load, with its warnings for the caller to log.
    /// - Throws: ``TLSFilesError`` naming the file at fault; nothing changed.
    @discardableResult
    package func reload() throws(TLSFilesError) -> TLSFiles.Loaded {
        let loaded = try files.load()
        current.withLock { $0 = loaded }
        return loaded
    }
}
