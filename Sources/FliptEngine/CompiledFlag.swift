// Bucketing: the boundaries a rule's distributions divide the 1,000 buckets at, and the search that finds a
// bucket's distribution, both exactly as the official engine computes them.

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
    // Wrapping arithmetic: every index is below `count`.
    while size > 1 {
        let half = size / 2
        let middle = base &+ half
        if value(middle) <= target { base = middle }
        size &-= half
    }
    let element = value(base)
    if element == target { return base }
    return base &+ (element < target ? 1 : 0)
}
