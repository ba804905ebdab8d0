import Foundation
import Logging

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Security)
import Security
#endif

/// ``TLSOptions`` read and checked: the DER bytes of every extra trust root, and whether verification is off.
///
/// Both transports build one; bad PEM input fails here, with the same ``SyncError/Kind/configuration`` errors.
struct TrustEvaluator: Sendable {
    /// DER certificates to trust in addition to the system store.
    let anchors: [Data]
    let insecureSkipVerify: Bool

    /// Reads every trust root; throws a configuration error for an unreadable file or text without a certificate.
    init(_ options: TLSOptions) throws(SyncError) {
        var anchors: [Data] = []
        for root in options.additionalTrustRoots {
            let text: String
            switch root {
            case .pem(let pem):
                text = pem
            case .pemFile(let path):
                guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw SyncError(.configuration, "The CA certificate file \(path) cannot be read; check the path.")
                }
                text = contents
            }
            let blocks = PEM.certificates(in: text)
            guard !blocks.isEmpty else {
                throw SyncError(.configuration, "No PEM certificate (BEGIN CERTIFICATE) was found in a trust root.")
            }
            anchors += blocks
        }
        self.anchors = anchors
        self.insecureSkipVerify = options.insecureSkipVerify
    }

    /// Whether the options differ from the defaults (system trust store, full verification).
    var isCustom: Bool { !anchors.isEmpty || insecureSkipVerify }

    /// Logs the one warning a transport gives when certificate verification is disabled.
    func warnIfUnverified(_ logger: Logger) {
        if insecureSkipVerify {
            logger.warning("TLS certificate verification is disabled: the connection to Flipt can be intercepted.")
        }
    }

    #if canImport(Security)
    func evaluate(
        _ challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust,
            let serverTrust = challenge.protectionSpace.serverTrust
        else {
            completionHandler(.performDefaultHandling, nil)
            return
        }
        if insecureSkipVerify {
            completionHandler(.useCredential, URLCredential(trust: serverTrust))
            return
        }
        guard !anchors.isEmpty else {
            completionHandler(.performDefaultHandling, nil)
            return
        }
        let certificates = anchors.compactMap { SecCertificateCreateWithData(nil, $0 as CFData) }
        SecTrustSetAnchorCertificates(serverTrust, certificates as CFArray)
        SecTrustSetAnchorCertificatesOnly(serverTrust, false)
        if SecTrustEvaluateWithError(serverTrust, nil) {
            completionHandler(.useCredential, URLCredential(trust: serverTrust))
        } else {
            completionHandler(.cancelAuthenticationChallenge, nil)
        }
    }
    #endif
}

/// Minimal PEM reading: the DER bytes of each `CERTIFICATE` block.
enum PEM {
    static func certificates(in text: String) -> [Data] {
        var result: [Data] = []
        var body: String?
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "-----BEGIN CERTIFICATE-----" {
                body = ""
            } else if trimmed == "-----END CERTIFICATE-----" {
                if let body, let der = Data(base64Encoded: body), !der.isEmpty { result.append(der) }
                body = nil
            } else if body != nil {
                body! += trimmed
            }
        }
        return result
    }
}
