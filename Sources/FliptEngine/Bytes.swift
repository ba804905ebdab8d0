// Byte-exact string work. Swift's `String ==`, hashing and `hasPrefix` use canonical equivalence, so "é" and
// "e\u{301}" compare equal there; the official engine compares UTF-8 bytes, and so does everything here.

extension String {
    /// Calls `body` with this string's UTF-8 bytes, without copying for native strings.
    @inline(__always)
    func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }

    /// Whether the two strings have exactly the same UTF-8 bytes.
    @inline(__always)
    func bytesEqual(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return withUTF8Bytes { mine in other.withUTF8Bytes { theirs in bytesEqualBuffers(mine, theirs) } }
    }

    /// Whether this string's UTF-8 bytes equal `bytes`.
    @inline(__always)
    func bytesEqual(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard utf8.count == bytes.count else { return false }
        return withUTF8Bytes { bytesEqualBuffers($0, bytes) }
    }
}

@inline(__always)
func bytesEqualBuffers(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    if lhs.isEmpty { return true }
    return memoryEqual(lhs.baseAddress!, rhs.baseAddress!, lhs.count)
}

@inline(__always)
private func memoryEqual(_ lhs: UnsafePointer<UInt8>, _ rhs: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var offset = 0
    let raw1 = UnsafeRawPointer(lhs)
    let raw2 = UnsafeRawPointer(rhs)
    while offset + 8 <= count {
        if raw1.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            != raw2.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        {
            return false
        }
        offset += 8
    }
    while offset < count {
        if lhs[offset] != rhs[offset] { return false }
        offset += 1
    }
    return true
}

/// Whether `haystack` starts with `needle`, byte for byte (an empty needle always matches).
func bytesHavePrefix(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: UnsafeBufferPointer<UInt8>) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return bytesEqualBuffers(UnsafeBufferPointer(rebasing: haystack[0..<needle.count]), needle)
}

/// Whether `haystack` ends with `needle`, byte for byte (an empty needle always matches).
func bytesHaveSuffix(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: UnsafeBufferPointer<UInt8>) -> Bool {
    guard needle.count <= haystack.count else { return false }
    return bytesEqualBuffers(UnsafeBufferPointer(rebasing: haystack[(haystack.count - needle.count)...]), needle)
}

/// Whether `haystack` contains `needle` as a byte substring (an empty needle always matches).
///
/// Matching bytes of valid UTF-8 can only start at a character boundary, so this agrees with Rust's
/// `str::contains` for valid UTF-8 input.
func bytesContain(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: UnsafeBufferPointer<UInt8>) -> Bool {
    if needle.isEmpty { return true }
    guard needle.count <= haystack.count else { return false }
    let first = needle[0]
    var start = 0
    let last = haystack.count - needle.count
    while start <= last {
        if haystack[start] == first
            && bytesEqualBuffers(UnsafeBufferPointer(rebasing: haystack[start..<(start + needle.count)]), needle)
        {
            return true
        }
        start += 1
    }
    return false
}

/// A fast, non-cryptographic hash of a byte string, for the flag table.
@inline(__always)
func byteHash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
    let count = bytes.count
    var offset = 0
    if let base = bytes.baseAddress {
        let raw = UnsafeRawPointer(base)
        while offset + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            hash = (hash ^ word) &* 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 32
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            tail |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        hash = (hash ^ tail) &* 0xC4CE_B9FE_1A85_EC53
    }
    hash ^= hash >> 29
    return hash
}
