import Foundation

/// How a request failed below HTTP, whatever the transport: each case has one ``SyncError`` kind and one advice,
/// so every ``HTTPTransport`` in this module reports the same failure the same way.
enum TransportFailure: Sendable, Hashable {
    /// The calling task was cancelled (or the transport closed).
    case cancelled
    /// No data for the idle timeout, or connecting took too long.
    case timedOut
    /// The host name did not resolve.
    case hostNotFound
    /// Nothing listens at the address.
    case refused
    /// The connection closed or reset before the response was complete.
    case connectionLost
    /// The TLS handshake failed; the detail names the reason (never a secret).
    case tls(String)
    /// The device has no network.
    case offline
    /// The proxy refused or failed to open the way to the server; the detail says how (never a credential).
    case proxy(String)
    /// The body says `Content-Encoding: gzip` (or deflate) but does not decode; the detail says why.
    case undecodableBody(String)
    /// The compressed body decodes to more than this many times its size: a decompression bomb.
    case decompressionLimit(Int)
    /// Anything else; the detail is the underlying error's description.
    case other(String)

    /// The classified error, with what to do.
    func error(url: URL) -> SyncError {
        let target = url.absoluteString
        switch self {
        case .cancelled:
            return .cancelled(url: target)
        case .timedOut:
            return SyncError(
                .timeout,
                "The request to \(target) timed out with no data from the server. Check the server and network.",
                url: target
            )
        case .hostNotFound:
            return SyncError(
                .network,
                "The host of \(target) could not be resolved. Check the URL and the device's DNS.",
                url: target
            )
        case .refused:
            return SyncError(
                .network,
                "Could not connect to \(target): connection refused. Check that the Flipt server runs there.",
                url: target
            )
        case .connectionLost:
            return SyncError(
                .network,
                "The connection to \(target) was lost before the response was complete. It is retried; if it "
                    + "persists, check proxies and the server's logs.",
                url: target
            )
        case .tls(let detail):
            return SyncError(
                .network,
                "The TLS connection to \(target) failed (\(detail)): the server's certificate was not accepted. If "
                    + "the server uses a private CA, trust it with TLSOptions.additionalTrustRoots (the CLI's "
                    + "--ca-cert) or add it to the system trust store; check the certificate's host names and dates.",
                url: target
            )
        case .offline:
            return SyncError(.network, "The device is offline; the request to \(target) was not sent.", url: target)
        case .proxy(let detail):
            return SyncError(
                .network,
                "The request to \(target) went to a proxy, and \(detail). Check the proxy variables (https_proxy, "
                    + "http_proxy, all_proxy, no_proxy) and the credentials in them.",
                url: target
            )
        case .undecodableBody(let detail):
            return SyncError(
                .badDocument,
                "The response from \(target) is marked as compressed (Content-Encoding) but its body does not "
                    + "decode (\(detail)); nothing from it was used. A proxy may have damaged it; check the server.",
                url: target
            )
        case .decompressionLimit(let ratio):
            return SyncError(
                .badDocument,
                "The compressed response from \(target) decodes to more than \(ratio) times its size, far beyond "
                    + "any snapshot; it was refused as a decompression bomb and nothing from it was used.",
                url: target
            )
        case .other(let detail):
            return SyncError(
                .network,
                "The request to \(target) failed (\(detail)). Check the URL and the network.",
                url: target
            )
        }
    }
}
