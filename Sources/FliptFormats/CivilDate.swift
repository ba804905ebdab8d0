/// A day of the proleptic Gregorian calendar, and its number of days since 1970-01-01, converted both ways with
/// Howard Hinnant's era-based algorithms (exact for every `Int64` day a time value can reach). The one calendar of
/// the package: the engine's RFC 3339 times and `datetime` constraints, and the cache file's ISO-8601 times.
package struct CivilDate: Hashable, Sendable {
    /// The year; years before 1 AD are 0, -1, … (astronomical numbering).
    package var year: Int64
    /// The month, 1 to 12.
    package var month: Int64
    /// The day of the month, 1 to 31.
    package var day: Int64

    /// A date from its parts; they are not checked (February 30 counts on into March).
    @inlinable
    package init(year: Int64, month: Int64, day: Int64) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date `days` days after 1970-01-01 (before it when negative).
    @inlinable
    package init(daysSince1970 days: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// The number of days from 1970-01-01 to this date (negative before it).
    @inlinable
    package var daysSince1970: Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
