/// A segment with its constraints compiled.
struct CompiledSegment: Sendable {
    let key: String
    let matchesAll: Bool
    let constraints: [CompiledConstraint]
}

/// A group of segments combined with AND or OR, as a rule or a segment rollout holds them.
struct SegmentGroup: Sendable {
    let isAnd: Bool
    /// Distinct by key (a later definition replaces an earlier one), in order of first appearance.
    let segments: [CompiledSegment]
    /// Every segment key, made once: the keys reported when an AND group applies.
    let allKeys: [String]

    /// Collapses duplicate keys: the last definition wins, at the position of the first.
    static func collapsing(_ segments: [CompiledSegment], isAnd: Bool) -> SegmentGroup {
        var distinct: [CompiledSegment] = []
        distinct.reserveCapacity(segments.count)
        if segments.count <= 8 {
            // Few segments (the usual case): compare keys directly rather than hashing them.
            for segment in segments {
                if let position = distinct.firstIndex(where: { $0.key.bytesEqual(segment.key) }) {
                    distinct[position] = segment
                } else {
                    distinct.append(segment)
                }
            }
            return SegmentGroup(isAnd: isAnd, segments: distinct, allKeys: distinct.map(\.key))
        }
        var positions: [[UInt8]: Int] = [:]
        for segment in segments {
            let key = Array(segment.key.utf8)
            if let position = positions[key] {
                distinct[position] = segment
            } else {
                positions[key] = distinct.count
                distinct.append(segment)
            }
        }
        return SegmentGroup(isAnd: isAnd, segments: distinct, allKeys: distinct.map(\.key))
    }
}

/// A distribution that can be chosen: its rollout was above zero.
struct CompiledDistribution: Sendable {
    let variantKey: String
    let attachment: String?
}

/// A variant rule: its segments and its distributions with pre-computed bucket boundaries.
struct CompiledRule: Sendable {
    let group: SegmentGroup
    /// The distributions whose rollout is above zero, in document order.
    let distributions: [CompiledDistribution]
    /// The sorted bucket boundaries, one per distribution, the last forced to 1000.
    let boundaries: [Int32]

    init(group: SegmentGroup, distributions all: [(variantKey: String, rollout: Float, attachment: String?)]) {
        self.group = group
        let valid = all.filter { $0.rollout > 0 }
        distributions = valid.map { CompiledDistribution(variantKey: $0.variantKey, attachment: $0.attachment) }
        boundaries = bucketBoundaries(valid.map(\.rollout))
    }
}

/// Bucket boundaries exactly as the engine computes them, in `Float`: cumulative share of the total, times 10,
/// rounded half away from zero, converted with saturation (NaN → 0); the last forced to 1000; then sorted.
func bucketBoundaries(_ rollouts: [Float]) -> [Int32] {
    var total: Float = 0
    for rollout in rollouts { total += rollout }
    var cumulative: Float = 0
    var boundaries: [Int32] = []
    boundaries.reserveCapacity(rollouts.count)
    for (position, rollout) in rollouts.enumerated() {
        let share: Float = (rollout / total) * 100
        cumulative += share
        var boundary = saturatingInt32((cumulative * 10).rounded())
        if position + 1 == rollouts.count { boundary = 1000 }
        boundaries.append(boundary)
    }
    boundaries.sort()
    return boundaries
}

/// Rust's `f32 as i32`: truncation toward zero with saturation, and NaN → 0.
func saturatingInt32(_ value: Float) -> Int32 {
    if value.isNaN { return 0 }
    if value >= 2_147_483_648 { return Int32.max }
    if value <= -2_147_483_648 { return Int32.min }
    return Int32(value)
}

/// The index Rust's `binary_search` (1.94) returns on a sorted slice, `Ok` or `Err` alike: with ties it finds
/// the last equal element; otherwise the insertion point.
func rustBinarySearch(_ values: [Int32], _ target: Int32) -> Int {
    rustBinarySearch(count: values.count, target) { values[$0] }
}

/// `rustBinarySearch` over `count` sorted values read by `value(at:)`.
@inline(__always)
func rustBinarySearch(count: Int, _ target: Int32, _ value: (Int) -> Int32) -> Int {
    var size = count
    if size == 0 { return 0 }
    var base = 0
    while size > 1 {
        let half = size / 2
        let middle = base + half
        if value(middle) <= target { base = middle }
        size -= half
    }
    let element = value(base)
    if element == target { return base }
    return base + (element < target ? 1 : 0)
}

/// A boolean rollout, in the kind the engine decides from which object is present.
enum CompiledRollout: Sendable {
    case threshold(percentage: Float, value: Bool)
    case segment(SegmentGroup, value: Bool)
}

/// A flag, indexed for evaluation.
final class CompiledFlag: Sendable {
    let key: String
    let isEnabled: Bool
    let type: FlagType
    let description: String?
    let defaultVariant: DefaultVariant?
    /// Variant flags only.
    let rules: [CompiledRule]
    /// Boolean flags only; rollouts with neither kind are left out.
    let rollouts: [CompiledRollout]
    /// Whether the document's rollout list had any entry at all (even `{}`), which decides FLAG_DISABLED.
    let hasRolloutEntries: Bool
    /// The CRC-32 state after the key's bytes: variant bucketing hashes the key followed by the entity id.
    let keyChecksum: CRC32

    init(
        key: String,
        isEnabled: Bool,
        type: FlagType,
        description: String?,
        defaultVariant: DefaultVariant?,
        rules: [CompiledRule],
        rollouts: [CompiledRollout],
        hasRolloutEntries: Bool
    ) {
        self.key = key
        self.isEnabled = isEnabled
        self.type = type
        self.description = description
        self.defaultVariant = defaultVariant
        self.rules = rules
        self.rollouts = rollouts
        self.hasRolloutEntries = hasRolloutEntries
        var checksum = CRC32()
        checksum.update(key)
        keyChecksum = checksum
    }

    var summary: FlagSummary {
        FlagSummary(
            key: key,
            isEnabled: isEnabled,
            type: type,
            description: description,
            defaultVariant: defaultVariant
        )
    }
}
