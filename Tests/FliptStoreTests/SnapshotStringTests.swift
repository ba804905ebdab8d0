import FliptEngine
import Foundation
import Testing

@testable import FliptStore

/// The one reader of snapshot strings, used by client seeds, `cache import` and the import fuzzer.
@Suite("Snapshot strings")
struct SnapshotStringTests {
    private let document = Array(snapshotDocument(flags: 3, seed: 1))

    @Test("a snapshot string gives back exactly the document it was made of, and that document decodes")
    func roundTrip() throws {
        let string = SnapshotString.encode(document)
        #expect(!string.contains("{") && !string.contains("\n"))
        let decoded = try SnapshotString.document(from: string.utf8)
        #expect(decoded == document)
        #expect(try Snapshot(document: decoded).flagCount == 3)
    }

    @Test("white space around the string and line breaks inside the base64 are ignored")
    func whiteSpace() throws {
        let string = SnapshotString.encode(document)
        var wrapped = ""
        for (index, character) in string.enumerated() {
            if index > 0 && index % 76 == 0 { wrapped += "\r\n" }
            wrapped.append(character)
        }
        #expect(try SnapshotString.document(from: ("\n\t " + wrapped + " \n\n").utf8) == document)
    }

    @Test("a JSON document is taken as it is, without its surrounding white space")
    func json() throws {
        let text = Array("  \n".utf8) + document + Array("\r\n".utf8)
        #expect(try SnapshotString.document(from: text) == document)
    }

    @Test("empty and blank texts are refused as empty")
    func empty() {
        for text in ["", " ", "\n\r\t  \n"] {
            #expect(throws: SnapshotString.Failure.empty) { try SnapshotString.document(from: text.utf8) }
        }
    }

    @Test("a text that is neither JSON nor base64 of anything is refused, with a message that says so")
    func notBase64() {
        for text in ["!!!", "%%%%", "-", "A"] {
            #expect(throws: SnapshotString.Failure.notBase64) { try SnapshotString.document(from: text.utf8) }
        }
        #expect("\(SnapshotString.Failure.notBase64)".contains("neither base64 nor a JSON document"))
    }
}
