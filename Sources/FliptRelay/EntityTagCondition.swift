/// Whether an `If-None-Match` field names one of the relay's ETags, compared as RFC 9110 §13.1.2 asks of a server:
/// a list of entity tags or `*`, each tag weak (`W/"…"`) or strong, compared weakly (the opaque tags alone).
///
/// Flipt's server compares the field with its ETag as one exact string, and sends that ETag unquoted; its SDKs
/// send the stored value back verbatim, which the exact comparison answers first. The rest is for what stands
/// between the relay and its clients: a CDN or nginx with `gzip on` that weakens an ETag and revalidates with
/// `W/"…"`, a cache holding several stored answers that lists them, `*`. Each costs a 200 with the whole document
/// where the answer is `304` when only the exact form is honoured.
enum EntityTagCondition {
    /// Whether `field` (the `If-None-Match` values, comma-joined when several fields were sent) names `etag`.
    static func matches(_ field: String, etag: String) -> Bool {
        if field == etag { return true }
        let wanted = opaque(Substring(etag))
        var members = field.utf8[...]
        while let member = nextMember(&members) {
            if member.elementsEqual("*".utf8) { return true }
            if opaque(Substring(member)).utf8.elementsEqual(wanted.utf8) { return true }
        }
        return false
    }

    /// The next list member of `rest` (without the white space and commas around it), or nil at the end. A quoted
    /// tag may hold commas; it ends at its closing quote.
    private static func nextMember(_ rest: inout Substring.UTF8View) -> Substring.UTF8View? {
        let separators: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ",")]
        while let first = rest.first, separators.contains(first) { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        var end = rest.startIndex
        var quoted = false
        while end < rest.endIndex {
            let byte = rest[end]
            if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if !quoted && separators.contains(byte) {
                break
            }
            end = rest.index(after: end)
        }
        let member = rest[rest.startIndex..<end]
        rest = rest[end...]
        return member
    }

    /// The opaque part of an entity tag: without a `W/` prefix and without the quotes around it (an unquoted
    /// tag, as Flipt sends, stands for itself).
    private static func opaque(_ tag: Substring) -> Substring {
        var tag = tag
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        if tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") { tag = tag.dropFirst().dropLast() }
        return tag
    }
}
