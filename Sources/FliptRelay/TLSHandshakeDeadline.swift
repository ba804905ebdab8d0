import FliptStore
import NIOCore
import NIOTLS

/// Closes a TLS connection whose handshake is not complete within a deadline, so that a client that sends its
/// handshake slowly, or nothing at all, holds a connection no longer than a slow HTTP request may.
///
/// It sits right after the TLS handler, whose `handshakeCompleted` event ends its watch; the connection's own
/// request and idle timers only see decrypted bytes, which a handshake never produces.
final class TLSHandshakeDeadline: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let problems: RateLimitedLog
    private let client: String
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, problems: RateLimitedLog, client: String) {
        self.timeout = timeout
        self.problems = problems
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let seconds = Double(timeout.nanoseconds) / 1e9
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [problems, client] in
            problems.log(
                .debug,
                kind: "TLS handshake timeout",
                "closed the connection from \(client): its TLS handshake was not complete within \(seconds) s"
            )
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            // The connection's own timers take over.
            timer?.cancel()
            timer = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}
