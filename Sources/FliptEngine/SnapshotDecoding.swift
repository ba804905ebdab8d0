// Decoding of a snapshot document (Flipt's wire format, v1 and v2 shapes) straight into the program.
//
// Field lists, their order (which matters for the array form serde also accepts) and which fields are required
// follow the official engine's document model; unknown fields are skipped.
//
// Each flag is decoded into one `FlagDraft` reused for the whole document (plain records in arrays that keep their
// capacity), then written into the `ProgramBuilder`: loading allocates little beyond what the snapshot keeps (its
// result strings and key lists). Measured against a tree of objects per flag lowered afterwards (the previous
// form), with the decoder's in-place key and enum matching: 70.2 -> 48.0 million instructions to load a 1 MB
// 1,000-flag document (callgrind, `flipt-bench load --callgrind issue18-1000`), and 0.6-0.7x the official engine's
// serde-based start-up instead of 0.9-1.0x (`flipt-bench load`, same run).

/// One flag as decoded, before it is written into a program.
struct FlagDraft {
    /// A variant rule or a boolean rollout.
    struct Item {
        enum Kind { case rule, threshold, segmentRollout, none }

        var kind: Kind
        var isAnd = false
        var value = false
        var percentage: Float = 0
        /// Indices into `segments`.
        var segments: Range<Int> = 0..<0
        /// Indices into `distributions`.
        var distributions: Range<Int> = 0..<0
    }

    struct Segment {
        var key: String
        var matchesAll: Bool
        /// Indices into `constraints`.
        var constraints: Range<Int>
    }

    struct Distribution {
        var variantKey: String
        var rollout: Float
        var attachment: String?
    }

    var key = ""
    var isEnabled = false
    var type = FlagType.variant
    var description: String?
    var defaultVariant: DefaultVariant?
    /// Whether the document's rollout list had any entry at all (even `{}`), which decides FLAG_DISABLED.
    var hasRolloutEntries = false
    var rules: [Item] = []
    /// Rollouts with neither a threshold nor a segment are kept with kind `.none` (the engine skips them).
    var rollouts: [Item] = []
    var segments: [Segment] = []
    var constraints: [CompiledConstraint] = []
    var distributions: [Distribution] = []
    /// The bytes and lists of this flag's constraints.
    var arena = ConstraintArena()

    /// Empties the draft for the next flag, keeping the arrays' storage.
    mutating func reset() {
        key = ""
        isEnabled = false
        type = .variant
        description = nil
        defaultVariant = nil
        hasRolloutEntries = false
        rules.removeAll(keepingCapacity: true)
        rollouts.removeAll(keepingCapacity: true)
        segments.removeAll(keepingCapacity: true)
        constraints.removeAll(keepingCapacity: true)
        distributions.removeAll(keepingCapacity: true)
        arena.bytes.removeAll(keepingCapacity: true)
        arena.strings.removeAll(keepingCapacity: true)
        arena.numbers.removeAll(keepingCapacity: true)
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

extension JSONCursor {
    /// Decodes a document into `builder`; returns the namespace key. With `split`, the flags from its candidate
    /// on are taken from the other thread when the candidate proves to be a flag's start and the other thread
    /// decoded them.
    mutating func decodeDocument(
        into builder: inout ProgramBuilder,
        split: FlagRunDecoding? = nil
    ) throws(DocumentError) -> String {
        var namespaceKey = ""
        var draft = FlagDraft()
        _ = try readStruct(fields: ["namespace", "flags"], required: 0b11) { cursor, field throws(DocumentError) in
            switch field {
            case 0:
                _ = try cursor.readStruct(fields: ["key", "name"], required: 0b1) {
                    cursor,
                    field throws(DocumentError) in
                    if field == 0 {
                        namespaceKey = try cursor.readString()
                    } else if try !cursor.consumeNull() {
                        try cursor.skipString()
                    }
                }
            default:
                if let split {
                    try cursor.decodeFlags(into: &builder, draft: &draft, split: split)
                } else {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        draft.reset()
                        try cursor.decodeFlag(&draft)
                        builder.add(draft)
                    }
                }
            }
        }
        try expectEnd()
        return namespaceKey
    }

    /// Reads the flags array as `readArray` does, checking each element start against the other thread's
    /// candidate: at the candidate, the other thread's flags are appended and the cursor moves past the array.
    private mutating func decodeFlags(
        into builder: inout ProgramBuilder,
        draft: inout FlagDraft,
        split: FlagRunDecoding
    ) throws(DocumentError) {
        guard peekSignificant() == UInt8(ascii: "[") else { throw typeError(expected: "an array") }
        index += 1
        if peekSignificant() == UInt8(ascii: "]") {
            index += 1
            return
        }
        var pending: FlagRunDecoding? = split
        while true {
            if let other = pending, index >= other.searchStart {
                switch other.step(atElement: index) {
                case .decode:
                    break
                case .alone:
                    other.stop()
                    pending = nil
                case .adopt:
                    pending = nil
                    if let adopted = other.join() {
                        builder.append(contentsOf: adopted.run)
                        index = adopted.end
                        return
                    }
                // The rest is no valid run of flags: decode it here, which finds its first error.
                }
            }
            draft.reset()
            try decodeFlag(&draft)
            builder.add(draft)
            switch peekSignificant() {
            case UInt8(ascii: ","):
                index += 1
                if peekSignificant() == UInt8(ascii: "]") { throw error("trailing comma in an array") }
            case UInt8(ascii: "]"):
                index += 1
                return
            default:
                throw error("expected ',' or ']' in an array, found \(foundDescription())")
            }
        }
    }

    mutating func readOptionalString() throws(DocumentError) -> String? {
        if try consumeNull() { return nil }
        return try readString()
    }

    /// Decodes one element of the flags array into `draft`.
    mutating func decodeFlag(_ draft: inout FlagDraft) throws(DocumentError) {
        let fields: [StaticString] = [
            "key", "name", "type", "description", "enabled", "rules", "rollouts", "defaultVariant",
        ]
        _ = try readStruct(fields: fields, required: 0b1_0011) { cursor, field throws(DocumentError) in
            switch field {
            case 0: draft.key = try cursor.readString()
            case 1: try cursor.skipString()
            case 2:
                if try !cursor.consumeNull() {
                    draft.type = try cursor.readKnownEnum() == JSONCursor.booleanFlagType ? .boolean : .variant
                }
            case 3: draft.description = try cursor.readOptionalString()
            case 4: draft.isEnabled = try cursor.readBool()
            case 5:
                if try !cursor.consumeNull() {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        try cursor.decodeRule(&draft)
                    }
                }
            case 6:
                if try !cursor.consumeNull() {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        draft.hasRolloutEntries = true
                        try cursor.decodeRollout(&draft)
                    }
                }
            default:
                if try !cursor.consumeNull() { draft.defaultVariant = try cursor.decodeVariant() }
            }
        }
    }

    private mutating func decodeVariant() throws(DocumentError) -> DefaultVariant {
        var id = ""
        var key = ""
        var attachment: String?
        _ = try readStruct(fields: ["id", "key", "attachment"], ignoring: ["name", "description"], required: 0b011) {
            cursor,
            field throws(DocumentError) in
            switch field {
            case 0: id = try cursor.readString()
            case 1: key = try cursor.readString()
            default: attachment = try cursor.readOptionalString()
            }
        }
        return DefaultVariant(id: id, key: key, attachment: attachment)
    }

    private mutating func decodeRule(_ draft: inout FlagDraft) throws(DocumentError) {
        var rule = FlagDraft.Item(kind: .rule)
        let fields: [StaticString] = ["distributions", "segments", "segmentOperator"]
        _ = try readStruct(fields: fields, ignoring: ["rank", "id"], required: 0b101) {
            cursor,
            field throws(DocumentError) in
            switch field {
            case 0:
                let start = draft.distributions.count
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    try cursor.decodeDistribution(&draft)
                }
                rule.distributions = start..<draft.distributions.count
            case 1:
                if try !cursor.consumeNull() {
                    let start = draft.segments.count
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        try cursor.decodeSegment(&draft)
                    }
                    rule.segments = start..<draft.segments.count
                }
            default:
                rule.isAnd = try cursor.readKnownEnum() == JSONCursor.andSegmentOperator
            }
        }
        draft.rules.append(rule)
    }

    private mutating func decodeDistribution(_ draft: inout FlagDraft) throws(DocumentError) {
        var distribution = FlagDraft.Distribution(variantKey: "", rollout: 0, attachment: nil)
        let fields: [StaticString] = ["variantKey", "rollout", "variantAttachment"]
        _ = try readStruct(fields: fields, required: 0b011) { cursor, field throws(DocumentError) in
            switch field {
            case 0: distribution.variantKey = try cursor.readString()
            case 1: distribution.rollout = try cursor.readFloat32()
            default: distribution.attachment = try cursor.readOptionalString()
            }
        }
        draft.distributions.append(distribution)
    }

    /// Decodes a rollout: a threshold wins over a segment; one with neither has kind `.none`.
    private mutating func decodeRollout(_ draft: inout FlagDraft) throws(DocumentError) {
        var segmentRollout: FlagDraft.Item?
        var threshold: FlagDraft.Item?
        _ = try readStruct(fields: ["description", "segment", "threshold"], ignoring: ["rank"], required: 0) {
            cursor,
            field throws(DocumentError) in
            switch field {
            case 0: if try !cursor.consumeNull() { try cursor.skipString() }
            case 1: if try !cursor.consumeNull() { segmentRollout = try cursor.decodeSegmentRollout(&draft) }
            default: if try !cursor.consumeNull() { threshold = try cursor.decodeThreshold() }
            }
        }
        draft.rollouts.append(threshold ?? segmentRollout ?? FlagDraft.Item(kind: .none))
    }

    private mutating func decodeSegmentRollout(_ draft: inout FlagDraft) throws(DocumentError) -> FlagDraft.Item {
        var rollout = FlagDraft.Item(kind: .segmentRollout)
        let fields: [StaticString] = ["segmentOperator", "value", "segments"]
        _ = try readStruct(fields: fields, required: 0b110) { cursor, field throws(DocumentError) in
            switch field {
            case 0:
                if try !cursor.consumeNull() {
                    rollout.isAnd = try cursor.readKnownEnum() == JSONCursor.andSegmentOperator
                }
            case 1: rollout.value = try cursor.readBool()
            default:
                let start = draft.segments.count
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    try cursor.decodeSegment(&draft)
                }
                rollout.segments = start..<draft.segments.count
            }
        }
        return rollout
    }

    private mutating func decodeThreshold() throws(DocumentError) -> FlagDraft.Item {
        var threshold = FlagDraft.Item(kind: .threshold)
        _ = try readStruct(fields: ["percentage", "value"], required: 0b11) { cursor, field throws(DocumentError) in
            if field == 0 {
                threshold.percentage = try cursor.readFloat32()
            } else {
                threshold.value = try cursor.readBool()
            }
        }
        return threshold
    }

    private mutating func decodeSegment(_ draft: inout FlagDraft) throws(DocumentError) {
        var key = ""
        var matchesAll = false
        var constraints = draft.constraints.count..<draft.constraints.count
        let fields: [StaticString] = ["key", "matchType", "constraints"]
        _ = try readStruct(fields: fields, ignoring: ["name", "description"], required: 0b111) {
            cursor,
            field throws(DocumentError) in
            switch field {
            case 0: key = try cursor.readString()
            case 1: matchesAll = try cursor.readKnownEnum() == JSONCursor.allSegmentMatchType
            default:
                let start = draft.constraints.count
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    let constraint = try cursor.decodeConstraint(&draft.arena)
                    draft.constraints.append(constraint)
                }
                constraints = start..<draft.constraints.count
            }
        }
        draft.segments.append(FlagDraft.Segment(key: key, matchesAll: matchesAll, constraints: constraints))
    }

    private mutating func decodeConstraint(_ arena: inout ConstraintArena) throws(DocumentError) -> CompiledConstraint {
        var type = ""
        var property = ""
        var operatorName = ""
        var value = ""
        let fields: [StaticString] = ["type", "property", "operator", "value"]
        _ = try readStruct(fields: fields, required: 0b1111) { cursor, field throws(DocumentError) in
            switch field {
            case 0: type = try cursor.readEnumName()
            case 1: property = try cursor.readString()
            case 2: operatorName = try cursor.readString()
            default: value = try cursor.readString()
            }
        }
        return CompiledConstraint(type: type, property: property, operator: operatorName, value: value, arena: &arena)
    }
}
