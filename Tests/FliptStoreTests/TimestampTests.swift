import Foundation
import Testing

@testable import FliptStore

@Suite("ISO-8601 timestamps")
struct TimestampTests {
    @Test(
        "formats known instants",
        arguments: [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (951_782_400.5, "2000-02-29T00:00:00.500Z"),
            (1_709_164_799.999, "2024-02-28T23:59:59.999Z"),
            (1_795_563_665.123, "2026-11-24T23:41:05.123Z"),
            (-1.0, "1969-12-31T23:59:59.000Z"),
            (253_402_300_799.0, "9999-12-31T23:59:59.000Z"),
        ]
    )
    func known(seconds: Double, text: String) throws {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(Timestamp.string(from: date) == text)
        let parsed = try #require(Timestamp.date(from: text))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.0005)
    }

    @Test("agrees with Foundation's ISO8601DateFormatter on random instants and round-trips")
    func agreesWithFoundation() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: 0...4_102_444_800_000)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let text = Timestamp.string(from: date)
            #expect(text == formatter.string(from: date))
            let parsed = try #require(Timestamp.date(from: text))
            #expect(Int64((parsed.timeIntervalSince1970 * 1000).rounded()) == milliseconds)
        }
    }

    @Test(
        "rejects text it did not write",
        arguments: ["", "2026-11-24", "2026-11-24T23:41:05.123", "2026-13-01T00:00:00Z", "2026-11-24 23:41:05Z", "x"]
    )
    func rejects(text: String) {
        #expect(Timestamp.date(from: text) == nil)
    }
}
