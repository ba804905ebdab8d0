import FliptFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A wall-clock instant with nanosecond precision, kept as raw numbers and formatted only when asked.
public struct EvaluationTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public let secondsSince1970: Int64
    /// Nanoseconds within the second, 0…999,999,999.
    public let nanoseconds: Int32

    /// Creates an instant from its parts; `nanoseconds` must be in 0…999,999,999.
    package init(secondsSince1970: Int64, nanoseconds: Int32) {
        precondition((0..<1_000_000_000).contains(nanoseconds), "nanoseconds must be in 0…999,999,999")
        self.secondsSince1970 = secondsSince1970
        self.nanoseconds = nanoseconds
    }

    /// The current wall-clock time.
    package static func now() -> EvaluationTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return EvaluationTimestamp(unchecked: Int64(spec.tv_sec), Int32(spec.tv_nsec))
    }

    init(unchecked seconds: Int64, _ nanoseconds: Int32) {
        self.secondsSince1970 = seconds
        self.nanoseconds = nanoseconds
    }

    /// Orders instants in time.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.secondsSince1970, lhs.nanoseconds) < (rhs.secondsSince1970, rhs.nanoseconds)
    }

    /// RFC 3339 in UTC with `Z`, with 0, 3, 6 or 9 fractional digits (the fewest that are exact), as the
    /// official engine prints timestamps: `2026-11-24T22:41:50.331507641Z`.
    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(30)
        appendRFC3339(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The RFC 3339 form.
    public var description: String { rfc3339 }

    func appendRFC3339(to bytes: inout [UInt8]) {
        let days = secondsSince1970 >= 0 ? secondsSince1970 / 86_400 : (secondsSince1970 - 86_399) / 86_400
        let secondOfDay = secondsSince1970 - days * 86_400
        let date = CivilDate(daysSince1970: days)
        appendDigits(date.year, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(date.month, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(date.day, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(secondOfDay / 3600, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay / 60 % 60, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(secondOfDay % 60, width: 2, to: &bytes)
        let nanos = Int64(nanoseconds)
        if nanos != 0 {
            bytes.append(UInt8(ascii: "."))
            if nanos % 1_000_000 == 0 {
                appendDigits(nanos / 1_000_000, width: 3, to: &bytes)
            } else if nanos % 1000 == 0 {
                appendDigits(nanos / 1000, width: 6, to: &bytes)
            } else {
                appendDigits(nanos, width: 9, to: &bytes)
            }
        }
        bytes.append(UInt8(ascii: "Z"))
    }
}

private func appendDigits(_ value: Int64, width: Int, to bytes: inout [UInt8]) {
    var remaining = value < 0 ? -value : value
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    var digitCount = 1
    var probe = remaining / 10
    while probe > 0 {
        digitCount += 1
        probe /= 10
    }
    for _ in digitCount..<max(width, digitCount) { bytes.append(UInt8(ascii: "0")) }
    let end = bytes.count + digitCount
    bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
    var position = end - 1
    repeat {
        bytes[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
        remaining /= 10
        position -= 1
    } while remaining > 0
}
