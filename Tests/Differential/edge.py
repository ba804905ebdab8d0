#!/usr/bin/env python3
"""Write the hand-written edge-case fixture: a document exercising every quirk of
evaluation-semantics.md §8 (Q1–Q16) and the §10 test vectors, plus the requests that probe it.

Usage: edge.py OUTPREFIX     (writes OUTPREFIX.document.json and OUTPREFIX.requests.jsonl)

Entity ids aimed at particular buckets are found with zlib.crc32 (the documented hash), so that
the tie and Float32 cases really land on their boundaries; the expected answers still come from
the official engine.
"""

import json
import sys
import zlib

S = "STRING_CONSTRAINT_COMPARISON_TYPE"
N = "NUMBER_CONSTRAINT_COMPARISON_TYPE"
B = "BOOLEAN_CONSTRAINT_COMPARISON_TYPE"
D = "DATETIME_CONSTRAINT_COMPARISON_TYPE"
E = "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"
ALL = "ALL_SEGMENT_MATCH_TYPE"
ANY = "ANY_SEGMENT_MATCH_TYPE"
OR = "OR_SEGMENT_OPERATOR"
AND = "AND_SEGMENT_OPERATOR"


def c(kind, prop, op, value):
    return {"type": kind, "property": prop, "operator": op, "value": value}


def seg(key, match, *constraints):
    return {"key": key, "name": "", "description": "", "matchType": match, "constraints": list(constraints)}


def dist(variant, rollout, attachment=None):
    d = {"variantKey": variant, "rollout": rollout}
    if attachment is not None:
        d["variantAttachment"] = attachment
    return d


def rule(operator, segments, distributions):
    return {"segmentOperator": operator, "segments": segments, "distributions": distributions}


def variant_flag(key, rules, enabled=True, default=None, **extra):
    flag = {"key": key, "name": "", "description": "", "enabled": enabled, "type": "VARIANT_FLAG_TYPE",
            "rules": rules, "rollouts": []}
    if default is not None:
        flag["defaultVariant"] = default
    flag.update(extra)
    return flag


def boolean_flag(key, rollouts, enabled=True, **extra):
    flag = {"key": key, "name": "", "description": "", "enabled": enabled, "type": "BOOLEAN_FLAG_TYPE",
            "rules": [], "rollouts": rollouts}
    flag.update(extra)
    return flag


def threshold(percentage, value=True):
    return {"threshold": {"percentage": percentage, "value": value}}


def seg_rollout(value, operator, *segments):
    segment = {"value": value, "segments": list(segments)}
    if operator is not None:
        segment["segmentOperator"] = operator
    return {"segment": segment}


ALWAYS = seg("always", ALL)  # zero constraints: always matches
NEVER = seg("never", ALL, c(S, "nothing", "eq", "x"))
DEFAULT = {"id": "d", "key": "fallback", "attachment": '{"default":true}'}

FLAGS = [
    # §10 test vectors: buckets 957, 978, 627 and boolean values 63 / 24.
    variant_flag("flag1", [rule(OR, [ALWAYS], [dist("first", 95.8), dist("second", 4.2)])]),
    variant_flag("new-checkout", [rule(OR, [ALWAYS], [dist("first", 97.9), dist("second", 2.1)])]),
    variant_flag("my-flag", [rule(OR, [ALWAYS], [dist("first", 62.7), dist("second", 37.3)])]),
    boolean_flag("vector-63", [threshold(63, True)], enabled=False),
    boolean_flag("vector-64", [threshold(64, True)], enabled=False),
    # Q1: boolean FLAG_DISABLED only without rollouts.
    boolean_flag("q1-empty", [], enabled=False),
    boolean_flag("q1-null", None, enabled=False),
    {"key": "q1-missing", "name": "", "enabled": False, "type": "BOOLEAN_FLAG_TYPE"},
    boolean_flag("q1-lone-empty-rollout", [{}], enabled=False),
    boolean_flag("q1-no-match", [threshold(0, True), seg_rollout(True, OR, NEVER)], enabled=False),
    boolean_flag("q1-match", [threshold(100, True)], enabled=False),
    # Q2: escaped strings break STRING isoneof lists.
    variant_flag("q2-escaped", [rule(OR, [seg("esc", ALL, c(S, "plan", "isoneof", '["pro", "x\\"y"]'))],
                                     [dist("in", 100)]),
                                rule(OR, [seg("esc-not", ALL, c(S, "plan", "isnotoneof", '["pro", "x\\"y"]'))],
                                     [dist("not-in", 100)])]),
    variant_flag("q2-unicode-escape", [rule(OR, [seg("u", ALL, c(S, "name", "isoneof", '["\\u00e9"]'))],
                                            [dist("escaped", 100)]),
                                       rule(OR, [seg("plain", ALL, c(S, "name", "isoneof", '["\u00e9"]'))],
                                            [dist("plain", 100)])]),
    # Q3: hash-map order of segment keys (compared as sets).
    variant_flag("q3-and-six", [rule(AND, [seg(k, ALL) for k in "abcdef"], [dist("six", 100)])]),
    boolean_flag("q3-boolean-six", [seg_rollout(True, AND, *[seg(k, ANY) for k in "abcdef"])]),
    # Q4: unknown constraint type under ANY depends on position.
    variant_flag("q4-match-then-unknown",
                 [rule(OR, [seg("mu", ANY, c(S, "plan", "eq", "pro"), c("WHAT", "plan", "eq", "pro"))],
                       [dist("hit", 100)])]),
    variant_flag("q4-unknown-then-match",
                 [rule(OR, [seg("um", ANY, c("WHAT", "plan", "eq", "pro"), c(S, "plan", "eq", "pro"))],
                       [dist("hit", 100)])]),
    variant_flag("q4-all-unknown", [rule(OR, [seg("au", ALL, c(S, "plan", "eq", "pro"), c("", "plan", "eq", "pro"))],
                                         [dist("hit", 100)])]),
    # Q5: tied boundaries go to the last tie.
    variant_flag("q5-tie", [rule(OR, [ALWAYS], [dist("fifty", 50), dist("tiny", 0.01), dist("rest", 49.99)])]),
    variant_flag("q5-four-ties", [rule(OR, [ALWAYS], [dist("v1", 50), dist("v2", 0.01), dist("v3", 0.01),
                                                      dist("v4", 0.01), dist("v5", 0.01), dist("v6", 49.96)])]),
    variant_flag("q5-end-tie", [rule(OR, [ALWAYS], [dist("big", 99.99), dist("small", 0.01)])]),
    variant_flag("q5-never", [rule(OR, [ALWAYS], [dist("n1", 0.01), dist("n2", 0.01), dist("n3", 0.01),
                                                  dist("last", 99.97)])]),
    # Q6: Float32 boundaries and thresholds.
    variant_flag("q6-float32", [rule(OR, [ALWAYS], [dist("first", 6.85), dist("second", 93.15)])]),
    boolean_flag("q6-threshold-50.000001", [threshold(50.000001, True)]),
    boolean_flag("q6-threshold-50.00001", [threshold(50.00001, True)]),
    boolean_flag("q6-threshold-double-rounding", [threshold("RAW:50.00000190734863281250001", True)]),
    # Q7: NUMBER is int32 only.
    variant_flag("q7-number", [
        rule(OR, [seg("eq5", ALL, c(N, "n", "eq", "5"))], [dist("eq5", 100)]),
        rule(OR, [seg("neq5", ALL, c(N, "n", "neq", "5"))], [dist("neq5", 100)]),
        rule(OR, [seg("eq5.0", ALL, c(N, "n", "eq", "5.0"))], [dist("eq5.0", 100)]),
        rule(OR, [seg("in", ALL, c(N, "n", "isoneof", "[5.0]"))], [dist("in-float", 100)]),
        rule(OR, [seg("notin", ALL, c(N, "n", "isnotoneof", "[5.0]"))], [dist("notin-float", 100)]),
        rule(OR, [seg("gt-max", ALL, c(N, "n", "gte", "2147483647"))], [dist("max", 100)]),
        rule(OR, [seg("present", ALL, c(N, "n", "present", ""))], [dist("present", 100)]),
    ], default={"id": "d", "key": "none"}),
    # Q8: DATETIME whole seconds, spellings.
    variant_flag("q8-datetime", [
        rule(OR, [seg("eq", ALL, c(D, "t", "eq", "2024-01-01T00:00:00Z"))], [dist("eq", 100)]),
        rule(OR, [seg("lt", ALL, c(D, "t", "lt", "2024-01-01T00:00:00Z"))], [dist("lt", 100)]),
        rule(OR, [seg("gt", ALL, c(D, "t", "gt", "2024-01-01T00:00:00Z"))], [dist("gt", 100)]),
        rule(OR, [seg("present", ALL, c(D, "t", "present", ""))], [dist("present-unparsable", 100)]),
    ]),
    variant_flag("q8-date-only-constraint", [rule(OR, [seg("d", ALL, c(D, "t", "neq", "2024-01-01"))],
                                                  [dist("hit", 100)])]),
    # Q9: missing == empty, for every type.
    variant_flag("q9-missing", [
        rule(OR, [seg("s-empty", ALL, c(S, "p", "empty", ""))], [dist("s-empty", 100)]),
        rule(OR, [seg("n-notpresent", ALL, c(N, "p", "notpresent", ""))], [dist("n-notpresent", 100)]),
        rule(OR, [seg("s-neq", ALL, c(S, "p", "neq", "x"))], [dist("s-neq", 100)]),
    ]),
    variant_flag("q9-entity-empty", [
        rule(OR, [seg("e-present", ALL, c(E, "", "present", ""))], [dist("e-present", 100)]),
        rule(OR, [seg("e-empty", ALL, c(E, "", "empty", ""))], [dist("e-empty", 100)]),
        rule(OR, [seg("e-neq", ALL, c(E, "", "neq", "zzz"))], [dist("e-neq", 100)]),
    ]),
    # Q10: zero-segment rules: OR never, AND always.
    variant_flag("q10-or-empty", [rule(OR, [], [dist("or", 100)])], default=DEFAULT),
    variant_flag("q10-and-empty", [rule(AND, [], [dist("and", 100)])], default=DEFAULT),
    boolean_flag("q10-boolean-and-empty", [seg_rollout(True, AND)], enabled=False),
    boolean_flag("q10-boolean-or-empty", [seg_rollout(True, OR)], enabled=False),
    # Q11: a matched rule without usable distributions gives the default variant with MATCH.
    variant_flag("q11-no-dist", [rule(OR, [ALWAYS], [])], default=DEFAULT),
    variant_flag("q11-nonpositive", [rule(OR, [ALWAYS], [dist("zero", 0), dist("neg", -3)])], default=DEFAULT),
    variant_flag("q11-no-default", [rule(OR, [ALWAYS], [])]),
    variant_flag("q11-own-attachment", [rule(OR, [ALWAYS], [dist("mine", 100)])], default=DEFAULT),
    # Q12: duplicates collapse.
    variant_flag("q12-dup", [rule(OR, [ALWAYS], [dist("first-definition", 100)])]),
    boolean_flag("q12-dup", [threshold(100, False)]),
    variant_flag("q12-dup-segment", [rule(AND, [seg("a", ALL, c(S, "x", "eq", "never")), seg("a", ALL)],
                                          [dist("last-wins", 100)])]),
    # Q13: unknown enums are lenient.
    {"key": "q13-bogus-type", "name": "", "enabled": True, "type": "BOGUS",
     "rules": [{"segmentOperator": "ZZZ", "segments": [seg("w", "WHAT", c(S, "plan", "eq", "pro")), NEVER],
                "distributions": [dist("lenient", 100)]}]},
    boolean_flag("q13-rollout-type", [{"type": "THRESHOLD_ROLLOUT_TYPE",
                                       "segment": {"value": True, "segments": [ALWAYS]}}], enabled=False),
    # Q14: a rollout with both kinds is a threshold only.
    boolean_flag("q14-both", [{"threshold": {"percentage": 0, "value": True},
                               "segment": {"value": True, "segmentOperator": OR, "segments": [ALWAYS]}}],
                 enabled=False),
    # Q15: thresholds out of range; overflowing distributions.
    boolean_flag("q15-negative", [threshold(-5, True)], enabled=False),
    boolean_flag("q15-over", [threshold(150, True)], enabled=False),
    variant_flag("q15-overflow", [rule(OR, [ALWAYS], [dist("huge", 1e39), dist("one", 1)])]),
    # Q16: byte-exact strings.
    variant_flag("k\u00e9", [rule(OR, [ALWAYS], [dist("composed-key", 100)])]),
    variant_flag("q16-strings", [
        rule(OR, [seg("eq", ALL, c(S, "w", "eq", "\u00e9"))], [dist("eq", 100)]),
        rule(OR, [seg("prefix", ALL, c(S, "w", "prefix", "\u00e9"))], [dist("prefix", 100)]),
        rule(OR, [seg("contains-empty", ALL, c(S, "w", "contains", ""))], [dist("contains-empty", 100)]),
    ]),
    # Disabled variant flag keeps its default variant; type checks before disabled.
    variant_flag("disabled-variant", [rule(OR, [ALWAYS], [dist("x", 100)])], enabled=False, default=DEFAULT),
    # Boolean string rules.
    variant_flag("boolean-constraint", [
        rule(OR, [seg("t", ALL, c(B, "b", "true", "ignored"))], [dist("true", 100)]),
        rule(OR, [seg("f", ALL, c(B, "b", "false", ""))], [dist("false", 100)]),
        rule(OR, [seg("eq", ALL, c(B, "b", "eq", "true"))], [dist("eq", 100)]),
    ]),
    {"key": "", "name": "", "enabled": True, "type": "VARIANT_FLAG_TYPE",
     "rules": [rule(OR, [ALWAYS], [dist("empty-key", 100, "")])]},
]


def bucket(flag, entity):
    return zlib.crc32((flag + entity).encode()) % 1000


def entity_in_bucket(flag, target, start=0):
    n = start
    while True:
        entity = f"e{n}"
        if bucket(flag, entity) == target:
            return entity
        n += 1


def requests():
    lines = []

    def add(kind, flag, entity, context=None):
        lines.append({"type": kind, "flag_key": flag, "entity_id": entity, "context": context or {}})

    add("variant", "flag1", "user-1")
    add("variant", "new-checkout", "12345")
    add("variant", "my-flag", "\u00e9")
    for entity in ("user-1", "12345", "\u00e9", "e\u0301", "", " "):
        add("boolean", "vector-63", entity)
        add("boolean", "vector-64", entity)
    for flag in ("q1-empty", "q1-null", "q1-missing", "q1-lone-empty-rollout", "q1-no-match", "q1-match"):
        add("boolean", flag, "user-1")
        add("variant", flag, "user-1")
    for value in ("pro", 'x"y', "free", ""):
        add("variant", "q2-escaped", "u", {"plan": value})
    for value in ("\u00e9", "e\u0301", "\\u00e9"):
        add("variant", "q2-unicode-escape", "u", {"name": value})
    add("variant", "q3-and-six", "u")
    add("boolean", "q3-boolean-six", "u")
    for flag in ("q4-match-then-unknown", "q4-unknown-then-match", "q4-all-unknown"):
        for plan in ("pro", "free"):
            add("variant", flag, "u", {"plan": plan})
    for flag, targets in (("q5-tie", [498, 499, 500, 0, 999]), ("q5-four-ties", [498, 499, 500]),
                          ("q5-end-tie", [998, 999, 0]), ("q5-never", [0, 1, 999])):
        for target in targets:
            add("variant", flag, entity_in_bucket(flag, target))
    for target in (67, 68, 69, 70):
        add("variant", "q6-float32", entity_in_bucket("q6-float32", target))
    for flag in ("q6-threshold-50.000001", "q6-threshold-50.00001", "q6-threshold-double-rounding"):
        n = 0
        found = 0
        while found < 3:
            entity = f"t{n}"
            if zlib.crc32((entity + flag).encode()) % 100 in (49, 50, 51):
                add("boolean", flag, entity)
                found += 1
            n += 1
    for value in ("5", "+5", "005", "-0", "5.0", "1e3", " 5", "2147483647", "2147483648", "abc", "", "4"):
        add("variant", "q7-number", "u", {"n": value})
    add("variant", "q7-number", "u", {"n": 5})
    for value in ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.999Z", "2023-12-31T23:59:60Z",
                  "2024-01-01t00:00:00z", "2024-01-01 02:00:00+02:00", "2023-12-31T19:00:00\u221205:00",
                  "2024-01-01", "2024-01-01T00:00:00", "2024-01-01T00:00:01Z", "2023-12-31T23:59:59.999Z",
                  "2024-01-01T00:00:00-00:00", "2024-01-01T00:00:00+0000"):
        add("variant", "q8-datetime", "u", {"t": value})
        add("variant", "q8-date-only-constraint", "u", {"t": value})
    for context in ({}, {"p": ""}, {"p": "x"}, {"p": None}, {"p": 1}, {"p": True}, {"p": {"nested": "x"}}):
        add("variant", "q9-missing", "u", context)
    for entity in ("", "zzz", "u"):
        add("variant", "q9-entity-empty", entity)
    for flag in ("q10-or-empty", "q10-and-empty"):
        add("variant", flag, "u")
    for flag in ("q10-boolean-and-empty", "q10-boolean-or-empty"):
        add("boolean", flag, "u")
    for flag in ("q11-no-dist", "q11-nonpositive", "q11-no-default", "q11-own-attachment"):
        add("variant", flag, "u")
    add("variant", "q12-dup", "u")
    add("boolean", "q12-dup", "u")
    add("variant", "q12-dup-segment", "u")
    add("variant", "q13-bogus-type", "u", {"plan": "pro"})
    add("variant", "q13-bogus-type", "u", {"plan": "free"})
    add("boolean", "q13-bogus-type", "u")
    add("boolean", "q13-rollout-type", "u")
    add("boolean", "q14-both", "u")
    add("boolean", "q15-negative", "u")
    add("boolean", "q15-over", "u")
    for entity in ("a", "b", "c"):
        add("variant", "q15-overflow", entity)
    add("variant", "k\u00e9", "u")
    add("variant", "ke\u0301", "u")
    for value in ("\u00e9", "e\u0301", "\u00e9t\u00e9", "e\u0301te\u0301", ""):
        add("variant", "q16-strings", "u", {"w": value})
    add("variant", "q16-strings", "u", {"e\u0301": "x", "w": "x"})
    add("variant", "disabled-variant", "u")
    add("boolean", "disabled-variant", "u")
    for value in ("true", "false", "TRUE", "1", ""):
        add("variant", "boolean-constraint", "u", {"b": value})
    add("variant", "", "u")
    add("variant", " ", "u")
    add("boolean", "", "u")
    add("variant", "missing", "u")
    add("boolean", "missing", "u")
    batch = [{"flag_key": f["key"], "entity_id": "batch-user", "context": {"plan": "pro"}} for f in FLAGS]
    batch += [{"flag_key": "missing", "entity_id": "x", "context": {}}, {"flag_key": " ", "entity_id": "", "context": {}}]
    lines.append({"type": "batch", "requests": batch})
    lines.append({"type": "batch", "requests": []})
    lines.append({"type": "list"})
    return lines


def document_text():
    text = json.dumps({"namespace": {"key": "default"}, "flags": FLAGS}, ensure_ascii=False, indent=1)
    # A number spelled beyond double precision: it must be read as a double, then narrowed to Float32.
    return text.replace('"RAW:50.00000190734863281250001"', "50.00000190734863281250001")


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0] + ".document.json", "w", encoding="utf-8") as f:
        f.write(document_text() + "\n")
    with open(argv[0] + ".requests.jsonl", "w", encoding="utf-8") as f:
        for line in requests():
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
