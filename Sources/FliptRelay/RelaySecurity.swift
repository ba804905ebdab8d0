import Logging
import NIOHTTP1

/// What protects a relay: its TLS identity (and the client CA that signs acceptable client certificates) and the
/// client tokens it accepts, each read from files and re-read together by ``reload()``, on SIGHUP for example.
///
/// ``apply(to:)`` wires both into a ``RelayServer/Configuration``: new connections take the TLS context in use
/// when they are accepted, and every request to the snapshot API is checked against the tokens in use when it
/// arrives. A reload therefore changes what new connections and new requests see, and leaves open connections and
/// streams as they are (as Flipt does, a stream is authorized once, when it opens).
package final class RelaySecurity: Sendable {
    /// The TLS identity, or nil for plain HTTP.
    package let tls: ReloadableTLSContext?
    /// The client tokens, or nil when requests need none.
    package let tokens: ClientTokenFile?

    /// The message of every `401`: Flipt's own, so that a client sees what a Flipt server would say.
    package static let unauthenticatedMessage = "request was not authenticated"

    /// The cookie Flipt reads a client token from when a request has no `Authorization` header.
    package static let tokenCookieName = "flipt_client_token"

    /// Combines what was loaded.
    package init(tls: ReloadableTLSContext?, tokens: ClientTokenFile?) {
        self.tls = tls
        self.tokens = tokens
    }

    /// Whether clients must present a certificate signed by the client CA.
    package var requiresClientCertificates: Bool { tls?.files.clientCAPath != nil }

    /// Serves with the TLS context in use (if any) and checks client tokens (if any).
    package func apply(to configuration: inout RelayServer.Configuration) {
        if let tls {
            configuration.tlsContext = { tls.context }
        }
        if let tokens {
            configuration.requiresAuthorization = true
            configuration.authorize = { head, namespace in Self.decide(tokens: tokens, head: head, namespace: namespace)
            }
        }
    }

    /// What a request presents: `Authorization: Bearer TOKEN`, else the `flipt_client_token` cookie (as a Flipt
    /// server accepts), checked against the tokens in use.
    static func decide(tokens: ClientTokenFile, head: HTTPRequestHead, namespace: String?) -> AuthorizationDecision {
        let authorization =
            head.headers.first(name: "Authorization") ?? cookieToken(in: head.headers).map { "Bearer " + $0 }
        switch tokens.authorize(authorization, namespace: namespace) {
        case .allowed:
            return .allowed
        case .unauthorized:
            return .unauthorized(unauthenticatedMessage)
        case .forbidden:
            return .forbidden("this client token may not read namespace \"\(namespace ?? "")\"")
        }
    }

    /// The value of the `flipt_client_token` cookie, or nil.
    static func cookieToken(in headers: HTTPHeaders) -> String? {
        for header in headers["Cookie"] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == tokenCookieName else {
                    continue
                }
                var value = trimmed[trimmed.index(after: equals)...]
                while value.last == " " || value.last == "\t" { value = value.dropLast() }
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                return value.isEmpty ? nil : String(value)
            }
        }
        return nil
    }

    /// What clients must present, for the start-up log; never a token. Empty when nothing is required.
    package var requirements: [String] {
        var parts: [String] = []
        if let tokens {
            parts.append("a client token (\(tokens.tokens))")
        }
        if let clientCA = tls?.files.clientCAPath {
            parts.append("a client certificate signed by a CA in \(clientCA)")
        }
        return parts
    }

    /// What one file set's reload did.
    package enum ReloadOutcome: Sendable {
        /// The files were read; the sentence says what is in use now.
        case reloaded(String)
        /// The files were read, and something about them needs attention (a certificate about to expire).
        case warning(String)
        /// The files could not be used; the ones loaded before stay. The sentence names the file, never a token.
        case kept(String)
    }

    /// Re-reads the TLS files and the tokens file, each on its own: a set that fails keeps what was in use.
    ///
    /// - Returns: one outcome per file set configured (TLS first); empty when neither is.
    package func reload() -> [ReloadOutcome] {
        var outcomes: [ReloadOutcome] = []
        if let tls {
            do throws(TLSFilesError) {
                let loaded = try tls.reload()
                var sentence = "reloaded the TLS files: certificate chain \(tls.files.certificateChainPath)"
                if let clientCA = tls.files.clientCAPath { sentence += ", client CA \(clientCA)" }
                sentence += "; new connections use them"
                outcomes.append(.reloaded(sentence))
                outcomes.append(contentsOf: loaded.warnings.map { .warning($0) })
            } catch {
                outcomes.append(.kept("the TLS files were not reloaded, the ones loaded before stay in use: \(error)"))
            }
        }
        if let tokens {
            do throws(ClientTokensError) {
                let loaded = try tokens.reload()
                outcomes.append(.reloaded("reloaded the client tokens: \(loaded); new requests are checked with them"))
            } catch {
                outcomes.append(
                    .kept("the client tokens were not reloaded, the ones read before stay in use: \(error)")
                )
            }
        }
        return outcomes
    }

    /// Reloads (see ``reload()``) and logs each outcome: reloads at notice, warnings at warning, failures at error.
    ///
    /// - Returns: whether every file set was reloaded.
    @discardableResult
    package func reload(logger: Logger) -> Bool {
        var succeeded = true
        for outcome in reload() {
            switch outcome {
            case .reloaded(let sentence):
                logger.notice("\(sentence)")
            case .warning(let sentence):
                logger.warning("\(sentence)")
            case .kept(let sentence):
                succeeded = false
                logger.error("\(sentence)")
            }
        }
        return succeeded
    }
}
