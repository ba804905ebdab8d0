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
    let left = UnsafeRawPointer(lhs)
    let right = UnsafeRawPointer(rhs)
    // Whole words, then the last word again (overlapping) instead of a byte loop; short runs compare two
    // overlapping halves. Every load stays within the `count` bytes, and every offset is below `count`, so the
    // arithmetic wraps rather than checks.
    if count >= 8 {
        var offset = 0
        while offset &+ 8 < count {
            if left.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                != right.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            {
                return false
            }
            offset &+= 8
        }
        return left.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            == right.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
    }
    if count >= 4 {
        return left.loadUnaligned(as: UInt32.self) == right.loadUnaligned(as: UInt32.self)
            && left.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
                == right.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
    }
    if count >= 2 {
        return left.loadUnaligned(as: UInt16.self) == right.loadUnaligned(as: UInt16.self)
            && lhs[count &- 1] == rhs[count &- 1]
    }
    return count == 0 || lhs[0] == rhs[0]
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

/// A fast, non-cryptographic hash of a byte string, for the flag table: every bit of the result depends on
/// every input byte (a multiply-xorshift finalizer), so both its low bits (the slot) and its high bits (the tag)
/// can be used.
@inline(__always)
func byteHash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    let count = bytes.count
    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: count)
    guard count > 0, let base = bytes.baseAddress else { return mixed(hash) }
    let raw = UnsafeRawPointer(base)
    let tail: UInt64
    if count >= 8 {
        var offset = 0
        while offset &+ 8 < count {
            hash = (hash ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            hash = (hash << 29) | (hash >> 35)
            offset &+= 8
        }
        tail = raw.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
    } else if count >= 4 {
        tail =
            UInt64(raw.loadUnaligned(as: UInt32.self))
            | UInt64(raw.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)) << 32
    } else if count >= 2 {
        tail = UInt64(raw.loadUnaligned(as: UInt16.self)) | UInt64(base[count &- 1]) << 16
    } else {
        tail = UInt64(base[0])
    }
    return mixed((hash ^ tail) &* 0xC4CE_B9FE_1A85_EC53)
}

/// The hash by which a packed `EvaluationContext` indexes its property names, and which a program stores with each
/// constraint for the name it reads.
@inline(__always)
func propertyNameHash(_ name: UnsafeBufferPointer<UInt8>) -> UInt32 {
    UInt32(truncatingIfNeeded: byteHash(name))
}

@inline(__always)
private func mixed(_ value: UInt64) -> UInt64 {
    var hash = value
    hash ^= hash >> 32
    hash &*= 0xD6E8_FEB8_6659_FD93
    hash ^= hash >> 32
    hash &*= 0xD6E8_FEB8_6659_FD93
    hash ^= hash >> 32
    return hash
}
