import Crypto
import FliptStore
import Foundation
import Synchronization

/// The client tokens the relay accepts, read from a tokens file, and the check of a request's `Authorization`.
///
/// The file has one entry a line: the token itself, or `sha256:` and the 64 hexadecimal digits (either case) of
/// the SHA-256 of its UTF-8 bytes, so that the file need not hold the secret. The entry may be followed, after
/// whitespace, by the namespaces the token may read, separated by commas, whitespace or both; with none it may
/// read every namespace. Blank lines and lines starting with `#` are ignored, and so is the rest of a line from a
/// `#` that follows whitespace. For example:
///
/// ```
/// # shop floor tablets: production only
/// 3f9c2a7e51b84d06a1e3c5f7d9b2a4c6 production
/// sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 staging, qa
/// ```
///
/// A request is checked by hashing the presented token and comparing the digest with every entry's, all of them
/// every time and each in constant time, so the answer's timing tells nothing about which bytes matched. No
/// description or error of this type ever contains a token (tokens never reach logs): entries are named by their
/// line number.
package struct ClientTokens: Sendable, CustomStringConvertible {
    /// The outcome of checking a request.
    package enum Decision: Sendable, Hashable {
        /// A known token that may read the namespace.
        case allowed
        /// No `Authorization: Bearer` header, a malformed one, or an unknown token: answer 401.
        case unauthorized
        /// A known token that may not read the namespace: answer 403.
        case forbidden
    }

    /// One accepted token: its digest and what it may read.
    package struct Entry: Sendable, Hashable, CustomStringConvertible {
        /// The SHA-256 of the token (32 bytes).
        let digest: [UInt8]
        /// The namespaces the token may read; nil for every namespace.
        package let namespaces: Set<String>?
        /// The line of the file the entry is on (1-based).
        package let line: Int

        /// `client token on line N`, with its namespaces; never the token.
        package var description: String {
            let scope = namespaces.map { "namespaces " + $0.sorted().joined(separator: ", ") } ?? "every namespace"
            return "client token on line \(line) (\(scope))"
        }
    }

    /// The entries, in file order.
    package let entries: [Entry]
    /// Where the entries were read from (a path, or a label given to ``init(parsing:source:)``).
    package let source: String

    /// Reads and parses a tokens file.
    ///
    /// - Throws: ``ClientTokensError`` naming the file (and line) when it cannot be read or an entry is malformed.
    package init(contentsOf path: String) throws(ClientTokensError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ClientTokensError(
                path: path,
                line: nil,
                reason: "the client tokens file could not be read (\(FileReadFailure.reason(path: path, error: error)))"
            )
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ClientTokensError(path: path, line: nil, reason: "the client tokens file is not UTF-8 text")
        }
        try self.init(parsing: text, source: path)
    }

    /// Parses the text of a tokens file.
    ///
    /// - Parameters:
    ///   - text: the file's contents.
    ///   - source: the file's path, named in errors.
    /// - Throws: ``ClientTokensError`` naming the source and line of the first malformed entry.
    package init(parsing text: String, source: String) throws(ClientTokensError) {
        var entries: [Entry] = []
        var firstLine: [[UInt8]: Int] = [:]
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let first = lines.first, first.hasPrefix("\u{FEFF}") { lines[0] = first.dropFirst() }
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            func failure(_ reason: String) -> ClientTokensError {
                ClientTokensError(path: source, line: number, reason: reason)
            }
            let fields = try Self.fields(of: rawLine, failure: failure)
            guard let first = fields.first else { continue }
            let digest = try Self.digest(ofEntry: first, failure: failure)
            var namespaces: Set<String>?
            if fields.count > 1 {
                var names = Set<String>()
                for (position, name) in fields.dropFirst().enumerated() {
                    guard name.utf8.allSatisfy(Self.isNamespaceByte) else {
                        throw failure(
                            "namespace \(position + 1) of the entry has a character other than letters, digits, "
                                + "'-' and '_' (namespaces are separated by commas or spaces)"
                        )
                    }
                    names.insert(name)
                }
                namespaces = names
            }
            if let earlier = firstLine[digest] {
                throw failure(
                    "the entry repeats the token of line \(earlier); give each token one line, with all its namespaces"
                )
            }
            firstLine[digest] = number
            entries.append(Entry(digest: digest, namespaces: namespaces, line: number))
        }
        self.entries = entries
        self.source = source
    }

    /// Whether the file has no entries, so that every request is refused.
    package var isEmpty: Bool { entries.isEmpty }

    /// `N client tokens from PATH (M limited to some namespaces)`; never a token.
    package var description: String {
        let limited = entries.filter { $0.namespaces != nil }.count
        let noun = entries.count == 1 ? "client token" : "client tokens"
        return "\(entries.count) \(noun) from \(source) (\(limited) limited to some namespaces)"
    }

    /// Checks a request's `Authorization` header value for `namespace`.
    ///
    /// `Bearer TOKEN` is accepted with the scheme in any case. The token's SHA-256 is compared with every entry's
    /// in constant time, without stopping at a match.
    ///
    /// - Parameters:
    ///   - authorization: the header's value, or nil when the request has none.
    ///   - namespace: the namespace the request reads; nil for a route tied to no namespace, where any known
    ///     token is allowed.
    package func authorize(_ authorization: String?, namespace: String?) -> Decision {
        guard let authorization, let token = Self.bearerToken(in: authorization) else { return .unauthorized }
        let presented = Array(SHA256.hash(data: Array(token.utf8)))
        var matched: Entry?
        for entry in entries where Self.constantTimeEqual(entry.digest, presented) {
            matched = entry
        }
        guard let matched else { return .unauthorized }
        guard let namespace, let allowed = matched.namespaces else { return .allowed }
        return allowed.contains(namespace) ? .allowed : .forbidden
    }

    // MARK: - Parsing

    /// The whitespace- and comma-separated fields of a line, comments removed; empty for a blank line.
    private static func fields(
        of line: Substring,
        failure: (String) -> ClientTokensError
    ) throws(ClientTokensError) -> [String] {
        var fields: [String] = []
        var current: [UInt8] = []
        var previousWasSeparator = true
        var firstFieldDone = false
        for byte in line.utf8 {
            if byte == UInt8(ascii: "#") && previousWasSeparator { break }
            let isSpace = byte == 0x20 || byte == 0x09 || byte == 0x0D
            // The token is ended by whitespace only (a token may hold commas); namespaces by commas too.
            let isSeparator = isSpace || (firstFieldDone && byte == UInt8(ascii: ","))
            if isSeparator {
                if !current.isEmpty {
                    fields.append(String(decoding: current, as: UTF8.self))
                    current.removeAll(keepingCapacity: true)
                    firstFieldDone = true
                }
            } else {
                if !firstFieldDone && !(0x21...0x7E).contains(byte) {
                    throw failure(
                        "the token has a character that cannot appear in an HTTP header (only visible ASCII "
                            + "characters can)"
                    )
                }
                current.append(byte)
            }
            previousWasSeparator = isSeparator
        }
        if !current.isEmpty { fields.append(String(decoding: current, as: UTF8.self)) }
        return fields
    }

    /// The 32-byte digest an entry stands for: the SHA-256 of a token, or the one given as `sha256:HEX`.
    private static func digest(
        ofEntry entry: String,
        failure: (String) -> ClientTokensError
    ) throws(ClientTokensError) -> [UInt8] {
        let prefix = "sha256:"
        guard entry.lowercased().hasPrefix(prefix) else {
            return Array(SHA256.hash(data: Array(entry.utf8)))
        }
        let hex = Array(entry.utf8.dropFirst(prefix.utf8.count))
        guard hex.count == 64 else {
            throw failure(
                "a sha256: entry needs exactly 64 hexadecimal digits after the prefix, not \(hex.count) characters"
            )
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = hexValue(hex[index]), let low = hexValue(hex[index + 1]) else {
                throw failure("a sha256: entry has a character that is not a hexadecimal digit")
            }
            digest.append(high << 4 | low)
            index += 2
        }
        return digest
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isNamespaceByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    // MARK: - Checking

    /// The token of `Bearer TOKEN` (scheme in any case, one or more spaces), or nil.
    static func bearerToken(in value: String) -> Substring? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }),
            trimmed[..<space].lowercased() == "bearer"
        else { return nil }
        let token = trimmed[space...].drop { $0 == " " || $0 == "\t" }
        guard !token.isEmpty, !token.contains(where: { $0 == " " || $0 == "\t" }) else { return nil }
        return token
    }

    /// Whether two 32-byte digests are equal, reading every byte of both whatever they hold.
    static func constantTimeEqual(_ first: [UInt8], _ second: [UInt8]) -> Bool {
        guard first.count == 32, second.count == 32 else { return false }
        var difference: UInt8 = 0
        for index in 0..<32 { difference |= first[index] ^ second[index] }
        return difference == 0
    }
}

/// A tokens file that cannot be used, with the file, the line and what is wrong; never a token's text.
package struct ClientTokensError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The tokens file.
    package var path: String
    /// The 1-based line of the malformed entry; nil when the whole file is at fault.
    package var line: Int?
    /// What is wrong, in a few words.
    package var reason: String

    /// Creates an error.
    package init(path: String, line: Int?, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    /// `PATH, line N: reason.`
    package var description: String {
        if let line { return "\(path), line \(line): \(reason)." }
        return "\(path): \(reason)."
    }
}

/// A tokens file and the tokens last read from it, re-read on ``reload()`` (on SIGHUP, say).
///
/// A reload that fails keeps the tokens in use and throws, for the caller to log; ``authorize(_:namespace:)`` is
/// safe to call from any thread at any time, during a reload too.
package final class ClientTokenFile: Sendable {
    /// The file's path.
    package let path: String
    private let current: Mutex<ClientTokens>

    /// Reads the file.
    ///
    /// - Throws: ``ClientTokensError`` if it cannot be read or an entry is malformed.
    package init(path: String) throws(ClientTokensError) {
        self.path = path
        current = Mutex(try ClientTokens(contentsOf: path))
    }

    /// The tokens in use.
    package var tokens: ClientTokens {
        current.withLock { $0 }
    }

    /// Re-reads the file and uses its tokens from now on; on error the tokens in use stay.
    ///
    /// - Returns: the new tokens.
    /// - Throws: ``ClientTokensError`` naming the file and line; nothing changed.
    @discardableResult
    package func reload() throws(ClientTokensError) -> ClientTokens {
        let tokens = try ClientTokens(contentsOf: path)
        current.withLock { $0 = tokens }
        return tokens
    }

    /// Checks a request against the tokens in use (see ``ClientTokens/authorize(_:namespace:)``).
    package func authorize(_ authorization: String?, namespace: String?) -> ClientTokens.Decision {
        tokens.authorize(authorization, namespace: namespace)
    }
}
