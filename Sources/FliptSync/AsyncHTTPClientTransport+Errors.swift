#if canImport(AsyncHTTPClient)
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension AsyncHTTPClientTransport {
    /// Maps an AsyncHTTPClient, SwiftNIO or TLS error to a ``SyncError``, as ``URLSessionTransport`` maps the
    /// same failure.
    static func classify(_ error: any Error, url: URL) -> SyncError {
        if let error = error as? SyncError { return error }
        return failure(for: error).error(url: url)
    }

    static func failure(for error: any Error) -> TransportFailure {
        if Task.isCancelled || error is CancellationError { return .cancelled }
        switch error {
        case let error as HTTPClientError:
            switch error {
            case .cancelled: return .cancelled
            case .readTimeout, .writeTimeout, .connectTimeout, .deadlineExceeded, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return .timedOut
            case .remoteConnectionClosed: return .connectionLost
            case .proxyAuthenticationRequired: return .proxy("the proxy asked for credentials (407)")
            case .invalidProxyResponse: return .proxy("the proxy refused to open a tunnel to the server")
            case .httpProxyHandshakeTimeout: return .proxy("the proxy did not answer in time")
            case .alreadyShutdown: return .other("the transport was shut down")
            default:
                // Never the values themselves: one may be the Authorization header, with its token.
                if "\(error)".hasPrefix("HTTPClientError.invalidHeaderFieldValues") {
                    return .other("a request header value holds a character HTTP does not allow")
                }
                return .other("\(error)")
            }
        case let error as NIOConnectionError:
            // Every address failed; the first connection error says why, else name resolution failed.
            if let first = error.connectionErrors.first { return failure(for: first.error) }
            return .hostNotFound
        case is SocketAddressError:
            return .hostNotFound
        case let error as IOError:
            switch error.errnoCode {
            case ECONNREFUSED: return .refused
            case ECONNRESET, EPIPE, ECONNABORTED: return .connectionLost
            case ETIMEDOUT: return .timedOut
            case ENETUNREACH, EHOSTUNREACH, ENETDOWN: return .offline
            default: return .other("\(error)")
            }
        case let error as ChannelError:
            switch error {
            case .connectTimeout: return .timedOut
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: return .connectionLost
            default: return .other("\(error)")
            }
        case let error as NIOSSLError:
            switch error {
            case .uncleanShutdown: return .connectionLost
            case .handshakeFailed(let reason): return .tls("handshake failed: \(reason)")
            default: return .tls("\(error)")
            }
        case let error as NIOSSLExtraError:
            return .tls("\(error)")
        case let error as BoringSSLError:
            return .tls("\(error)")
        case let error as NIOHTTPDecompression.DecompressionError:
            switch error {
            case .limit: return .decompressionLimit(maximumDecompressionRatio)
            case .inflationError(let code): return .undecodableBody("zlib error \(code)")
            case .initializationError(let code): return .other("the gzip decoder could not start (zlib \(code))")
            }
        case let error as NIOHTTPDecompression.ExtraDecompressionError:
            return .undecodableBody(
                error == .truncatedData ? "the compressed data ends early" : "bytes follow the compressed data"
            )
        case let error as HTTPParserError:
            // A body cut short by a closed connection shows up as a parser error at end of file.
            return error == .invalidEOFState ? .connectionLost : .other("invalid HTTP response: \(error)")
        default:
            return .other("\(error)")
        }
    }
}
#endif
