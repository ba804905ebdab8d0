import Foundation

extension TestFliptServer {
    /// One request as the server read it off the wire.
    package struct RecordedRequest: Sendable, Hashable {
        /// The request method, for example `GET`.
        package var method: String
        /// The request target's path, still percent-encoded, without the query.
        package var path: String
        /// The raw query string after `?`, still percent-encoded, or nil when the target had no `?`.
        package var rawQuery: String?
        /// Every header line in the order received, names as sent.
        package var headers: [HeaderField]
        /// When the server finished reading the request head.
        package var receivedAt: ContinuousClock.Instant
        /// The connection it arrived on; requests on a reused keep-alive connection share the number.
        package var connectionID: Int

        /// The first value of the header called `name`, compared case-insensitively.
        package func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }

        /// Every value of the headers called `name`, compared case-insensitively.
        package func headerValues(_ name: String) -> [String] {
            headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
        }

        /// The percent-decoded values of the query parameter `name`.
        package func queryValues(_ name: String) -> [String] {
            guard let rawQuery else { return [] }
            var values: [String] = []
            for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
                guard key == name else { continue }
                let value = parts.count > 1 ? String(parts[1]) : ""
                values.append(value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? value)
            }
            return values
        }
    }

    /// Bytes and connections the server has seen, for traffic measurements.
    package struct Traffic: Sendable, Hashable {
        /// Bytes read from clients, request heads included.
        package var bytesReceived: Int = 0
        /// Bytes written to clients, response heads and chunk framing included.
        package var bytesSent: Int = 0
        /// Connections accepted.
        package var connections: Int = 0
        /// Requests read.
        package var requests: Int = 0
    }
}
