// Decoding of a snapshot document (Flipt's wire format, v1 and v2 shapes) straight into the compiled model.
//
// Field lists, their order (which matters for the array form serde also accepts) and which fields are required
// follow the official engine's document model; unknown fields are skipped.

/// A decoded document: the namespace key and the compiled flags in document order (duplicates included).
struct DecodedDocument {
    var namespaceKey = ""
    var flags: [CompiledFlag] = []
    var arena = ConstraintArena()
}

extension JSONCursor {
    mutating func decodeDocument() throws(DocumentError) -> DecodedDocument {
        var document = DecodedDocument()
        var arena = ConstraintArena()
        _ = try readStruct(fields: ["namespace", "flags"], required: 0b11) { cursor, field throws(DocumentError) in
            switch field {
            case 0:
                _ = try cursor.readStruct(fields: ["key", "name"], required: 0b1) {
                    cursor,
                    field throws(DocumentError) in
                    if field == 0 {
                        document.namespaceKey = try cursor.readString()
                    } else {
                        _ = try cursor.readOptionalString()
                    }
                }
            default:
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    document.flags.append(try cursor.decodeFlag(&arena))
                }
            }
        }
        try expectEnd()
        document.arena = arena
        return document
    }

    mutating func readOptionalString() throws(DocumentError) -> String? {
        if try consumeNull() { return nil }
        return try readString()
    }

    private mutating func decodeFlag(_ arena: inout ConstraintArena) throws(DocumentError) -> CompiledFlag {
        var key = ""
        var isEnabled = false
        var type = FlagType.variant
        var description: String?
        var defaultVariant: DefaultVariant?
        var rules: [CompiledRule] = []
        var rollouts: [CompiledRollout] = []
        var hasRolloutEntries = false
        let fields: [StaticString] = [
            "key", "name", "type", "description", "enabled", "rules", "rollouts", "defaultVariant",
        ]
        _ = try readStruct(fields: fields, required: 0b1_0011) { cursor, field throws(DocumentError) in
            switch field {
            case 0: key = try cursor.readString()
            case 1: _ = try cursor.readString()
            case 2:
                if try !cursor.consumeNull() {
                    type = ByteName(try cursor.readEnumName()) == "BOOLEAN_FLAG_TYPE" ? .boolean : .variant
                }
            case 3: description = try cursor.readOptionalString()
            case 4: isEnabled = try cursor.readBool()
            case 5:
                if try !cursor.consumeNull() {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        rules.append(try cursor.decodeRule(&arena))
                    }
                }
            case 6:
                if try !cursor.consumeNull() {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        hasRolloutEntries = true
                        if let rollout = try cursor.decodeRollout(&arena) { rollouts.append(rollout) }
                    }
                }
            default:
                if try !cursor.consumeNull() { defaultVariant = try cursor.decodeVariant() }
            }
        }
        return CompiledFlag(
            key: key,
            isEnabled: isEnabled,
            type: type,
            description: description,
            defaultVariant: defaultVariant,
            rules: type == .variant ? rules : [],
            rollouts: type == .boolean ? rollouts : [],
            hasRolloutEntries: hasRolloutEntries
        )
    }

    private mutating func decodeVariant() throws(DocumentError) -> DefaultVariant {
        var id = ""
        var key = ""
        var attachment: String?
        _ = try readStruct(fields: ["id", "key", "attachment"], required: 0b011) {
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

    private mutating func decodeRule(_ arena: inout ConstraintArena) throws(DocumentError) -> CompiledRule {
        var distributions: [(variantKey: String, rollout: Float, attachment: String?)] = []
        var segments: [CompiledSegment] = []
        var isAnd = false
        let fields: [StaticString] = ["distributions", "segments", "segmentOperator"]
        _ = try readStruct(fields: fields, required: 0b101) { cursor, field throws(DocumentError) in
            switch field {
            case 0:
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    distributions.append(try cursor.decodeDistribution())
                }
            case 1:
                if try !cursor.consumeNull() {
                    try cursor.readArray { cursor, _ throws(DocumentError) in
                        segments.append(try cursor.decodeSegment(&arena))
                    }
                }
            default:
                isAnd = ByteName(try cursor.readEnumName()) == "AND_SEGMENT_OPERATOR"
            }
        }
        return CompiledRule(group: .collapsing(segments, isAnd: isAnd), distributions: distributions)
    }

    private mutating func decodeDistribution() throws(DocumentError) -> (
        variantKey: String, rollout: Float, attachment: String?
    ) {
        var variantKey = ""
        var rollout: Float = 0
        var attachment: String?
        let fields: [StaticString] = ["variantKey", "rollout", "variantAttachment"]
        _ = try readStruct(fields: fields, required: 0b011) { cursor, field throws(DocumentError) in
            switch field {
            case 0: variantKey = try cursor.readString()
            case 1: rollout = try cursor.readFloat32()
            default: attachment = try cursor.readOptionalString()
            }
        }
        return (variantKey, rollout, attachment)
    }

    /// Decodes a rollout; nil when it has neither a threshold nor a segment (the engine skips those).
    private mutating func decodeRollout(_ arena: inout ConstraintArena) throws(DocumentError) -> CompiledRollout? {
        var segmentRollout: (group: SegmentGroup, value: Bool)?
        var threshold: (percentage: Float, value: Bool)?
        _ = try readStruct(fields: ["description", "segment", "threshold"], required: 0) {
            cursor,
            field throws(DocumentError) in
            switch field {
            case 0: _ = try cursor.readOptionalString()
            case 1: if try !cursor.consumeNull() { segmentRollout = try cursor.decodeSegmentRollout(&arena) }
            default: if try !cursor.consumeNull() { threshold = try cursor.decodeThreshold() }
            }
        }
        if let threshold { return .threshold(percentage: threshold.percentage, value: threshold.value) }
        if let segmentRollout { return .segment(segmentRollout.group, value: segmentRollout.value) }
        return nil
    }

    private mutating func decodeSegmentRollout(
        _ arena: inout ConstraintArena
    ) throws(DocumentError) -> (group: SegmentGroup, value: Bool) {
        var isAnd = false
        var value = false
        var segments: [CompiledSegment] = []
        let fields: [StaticString] = ["segmentOperator", "value", "segments"]
        _ = try readStruct(fields: fields, required: 0b110) { cursor, field throws(DocumentError) in
            switch field {
            case 0:
                if try !cursor.consumeNull() {
                    isAnd = ByteName(try cursor.readEnumName()) == "AND_SEGMENT_OPERATOR"
                }
            case 1: value = try cursor.readBool()
            default:
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    segments.append(try cursor.decodeSegment(&arena))
                }
            }
        }
        return (.collapsing(segments, isAnd: isAnd), value)
    }

    private mutating func decodeThreshold() throws(DocumentError) -> (percentage: Float, value: Bool) {
        var percentage: Float = 0
        var value = false
        _ = try readStruct(fields: ["percentage", "value"], required: 0b11) { cursor, field throws(DocumentError) in
            if field == 0 {
                percentage = try cursor.readFloat32()
            } else {
                value = try cursor.readBool()
            }
        }
        return (percentage, value)
    }

    private mutating func decodeSegment(_ arena: inout ConstraintArena) throws(DocumentError) -> CompiledSegment {
        var key = ""
        var matchesAll = false
        var constraints: [CompiledConstraint] = []
        let fields: [StaticString] = ["key", "matchType", "constraints"]
        _ = try readStruct(fields: fields, required: 0b111) { cursor, field throws(DocumentError) in
            switch field {
            case 0: key = try cursor.readString()
            case 1: matchesAll = ByteName(try cursor.readEnumName()) == "ALL_SEGMENT_MATCH_TYPE"
            default:
                try cursor.readArray { cursor, _ throws(DocumentError) in
                    constraints.append(try cursor.decodeConstraint(&arena))
                }
            }
        }
        return CompiledSegment(key: key, matchesAll: matchesAll, constraints: constraints)
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
