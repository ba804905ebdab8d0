import Testing

@testable import FliptEngine

/// Strings with escapes: decoded without UTF-8 validation when every byte above 0x7F comes from an escape, and
/// validated whenever one was copied from the document.
@Suite("Escaped strings: validated only where the document's own bytes can be invalid")
struct EscapedStringTests {
    /// A piece of a string literal: its bytes in the document and the UTF-8 it decodes to (nil when invalid).
    private struct Piece {
        var literal: [UInt8]
        var decoded: [UInt8]?
    }

    /// A random piece: plain ASCII, a short escape, a `\u` escape (one, two or three UTF-8 bytes, or a surrogate
    /// pair), a raw multibyte character, or (when `invalid`) a raw byte that is no valid UTF-8 there.
    private static func piece(_ random: inout SeededGenerator, invalid: Bool) -> Piece {
        let escapes: [(String, UInt8)] = [
            ("\\n", 0x0A), ("\\t", 0x09), ("\\\"", 0x22), ("\\\\", 0x5C), ("\\/", 0x2F), ("\\b", 0x08),
            ("\\f", 0x0C), ("\\r", 0x0D),
        ]
        let scalars: [UInt32] = [0x41, 0x7F, 0xE9, 0x7FF, 0x800, 0x20AC, 0xFFFD, 0x1F600, 0x10FFFF]
        switch Int.random(in: 0..<(invalid ? 6 : 5), using: &random) {
        case 0:
            let text = (0..<Int.random(in: 1...20, using: &random)).map { _ in
                UInt8.random(in: 0x20...0x7E, using: &random)
            }.filter { $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
            return Piece(literal: text, decoded: text)
        case 1:
            let (literal, byte) = escapes.randomElement(using: &random)!
            return Piece(literal: Array(literal.utf8), decoded: [byte])
        case 2:
            let scalar = scalars.randomElement(using: &random)!
            let decoded = Array(String(Unicode.Scalar(scalar)!).utf8)
            let digits = Array((Bool.random(using: &random) ? "0123456789abcdef" : "0123456789ABCDEF").utf8)
            var literal: [UInt8] = []
            for unit in String(Unicode.Scalar(scalar)!).utf16 {
                literal.append(UInt8(ascii: "\\"))
                literal.append(UInt8(ascii: "u"))
                for shift: UInt16 in [12, 8, 4, 0] {
                    literal.append(digits[Int((unit >> shift) & 0xF)])
                }
            }
            return Piece(literal: literal, decoded: decoded)
        case 3, 4:
            let scalar = scalars.randomElement(using: &random)!
            let bytes = Array(String(Unicode.Scalar(scalar)!).utf8)
            return Piece(literal: bytes, decoded: bytes)
        default:
            // A lone continuation byte, a byte never in UTF-8, a truncated sequence, an overlong form, a surrogate;
            // followed by an ASCII byte, so that two such pieces in a row never make a valid sequence together.
            let bad: [[UInt8]] = [[0x80], [0xFF], [0xC3], [0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80]]
            return Piece(literal: bad.randomElement(using: &random)! + [UInt8(ascii: "x")], decoded: nil)
        }
    }

    @Test("Random literals decode to the expected bytes or are refused exactly when invalid", arguments: [1, 2, 3])
    func randomLiterals(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        for _ in 0..<2_000 {
            let invalid = Int.random(in: 0..<4, using: &random) == 0
            var pieces = (0..<Int.random(in: 1...6, using: &random)).map { _ in
                Self.piece(&random, invalid: invalid)
            }
            // Always at least one escape, so that the escaped path runs.
            pieces.insert(
                Piece(literal: Array("\\n".utf8), decoded: [0x0A]),
                at: Int.random(in: 0...pieces.count, using: &random)
            )
            let literal = [UInt8(ascii: "\"")] + pieces.flatMap(\.literal) + [UInt8(ascii: "\"")]
            let expected: [UInt8]? = pieces.contains { $0.decoded == nil } ? nil : pieces.flatMap { $0.decoded! }
            let decoded: [UInt8]? = literal.withUnsafeBufferPointer { buffer in
                var cursor = JSONCursor(buffer)
                guard let text = try? cursor.readString() else { return nil }
                return Array(text.utf8)
            }
            #expect(
                decoded == expected,
                "seed \(seed): \(literal.map { String($0, radix: 16) }.joined(separator: " "))"
            )
        }
    }

    @Test("An escaped string with a raw invalid byte is refused and names its place")
    func rawInvalidByteAfterEscape() throws {
        let literal: [UInt8] = Array(#""caf\n"#.utf8) + [0xC3] + Array(#"x""#.utf8)
        let error = literal.withUnsafeBufferPointer { buffer -> DocumentError? in
            var cursor = JSONCursor(buffer)
            do throws(DocumentError) {
                _ = try cursor.readString()
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.description.contains("invalid UTF-8") == true, "\(String(describing: error))")
    }
}
