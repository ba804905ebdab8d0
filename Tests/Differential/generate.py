#!/usr/bin/env python3
"""Seeded generator of random Flipt snapshot documents and evaluation request lines.

Usage:
    generate.py SEED REQUESTS OUTPREFIX
        writes OUTPREFIX.document.json, OUTPREFIX.requests.jsonl and, when the configured namespace
        is not `default`, OUTPREFIX.namespace (the namespace both engines must be configured with)
    generate.py --schema-cases OUTDIR
        writes small documents with structural variations (missing/null/wrong-typed fields, raw JSON
        oddities) as OUTDIR/NAME.document.json; the official engine decides which ones it rejects

Standard library only. The same seed always gives the same bytes (`random.Random(seed)`).
The documents are in wire format (the Flipt v2 snapshot shape, sometimes with v1 extras) and
aim at every evaluation path: both flag types, every constraint type and operator (with case
variants and unknown ones), odd context spellings, duplicate keys, odd rollout splits, …
Contexts are mostly built from the constraint values found in the document, so that MATCH
paths are exercised, not only fall-through.
"""

import datetime
import json
import os
import random
import re
import sys

STRING_TYPE = "STRING_CONSTRAINT_COMPARISON_TYPE"
NUMBER_TYPE = "NUMBER_CONSTRAINT_COMPARISON_TYPE"
BOOLEAN_TYPE = "BOOLEAN_CONSTRAINT_COMPARISON_TYPE"
DATETIME_TYPE = "DATETIME_CONSTRAINT_COMPARISON_TYPE"
ENTITY_TYPE = "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"
UNKNOWN_TYPES = ["UNKNOWN_CONSTRAINT_COMPARISON_TYPE", "STRING", "string_constraint_comparison_type", "", "FOO"]

STRING_OPS = ["eq", "neq", "prefix", "suffix", "contains", "notcontains", "isoneof", "isnotoneof", "empty", "notempty"]
NUMBER_OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "isoneof", "isnotoneof", "present", "notpresent"]
BOOLEAN_OPS = ["true", "false", "present", "notpresent"]
DATETIME_OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "present", "notpresent"]
ODD_OPS = ["EQ", "Eq", "NEQ", "", "bogus", "==", "isOneOf", "TRUE", "Prefix", " eq", "eq "]
ALL_OPS = sorted(set(STRING_OPS + NUMBER_OPS + BOOLEAN_OPS + DATETIME_OPS))

WORDS = ["pro", "free", "enterprise", "Pro", " pro", "pro ", "\u00e9", "e\u0301", "caf\u00e9", "cafe\u0301",
         "a b", 'x"y', "back\\slash", "\u65e5\u672c", "pro,free", "\u00fc", "beta", "x", "0", "-",
         "\u0000", "a\u0000b", "\U0001f600", "\\/", "/", "%20", "\t", "line\nbreak", "\u2028", "x" * 300]
STRING_LISTS = [' ["pro"]', '["pro",]', "[1,2]", "pro,free", "[]", '["pro", "x\\"y"]', '["pro" , "free"]',
                "[ ]", '["pro"] x', '{"a":1}', "null", '["pro", null]', '["\\u00e9"]', "['pro']",
                '["\u00e9", "free"]', '["", "pro"]', '["e\u0301"]', '[\n"beta"\n]', '["pro","pro"]',
                '["a"', '[["pro"]]', '["pro"]\n', '\t["pro"]', '["pro", 1]', '["p\\u0000"]', '["pro","\\/"]',
                '["\\/"]', '["\U0001f600"]', '[ "pro" ]', '["\\ud83d\\ude00"]', '["free"]', '["beta", "x"]']
NUMBER_LISTS = ["[5, 6]", "[5.0]", '["5"]', "[2147483648]", "5", "[5,6", "[]", "[-0]", "[007]", "[+5]",
                "[ 1 , 2 ]", "[-2147483648, 2147483647]", "[1e3]", "[0, -1, 7]", "[7]", "[ 3]", "[-5,10,100]",
                "[5,]", "[-]", "[1,\n2,\t3]", "[1]   ", "[01]", "[1.0]", "[1e0]", "[9223372036854775807]", "[true]",
                "[null]", "[[5]]", "[-2147483649]", "[ -5 ]", "[5, 5]", "[-0, 0]", "[1 2]"]
NUMBER_TEXTS = ["1e3", " 7", "7 ", "abc", "+5", "-0", "2147483648", "2147483647", "-2147483648", "-2147483649",
                "007", "5.0", "3.5", "0x10", "\u0665", "", "+", "-", "00", "+0", "1_000", "+-5", "--5", "\uff15",
                "00000000000000000000005", "-00", "+2147483647", "5\u0000", "\t5", "5\n", "-000000000002147483648"]
BOOLEAN_TEXTS = ["true", "false", "TRUE", "True", "1", "0", "t", "yes", " true", "false ", ""]
ODD_DATETIMES = ["2024-01-01", "2024-01-01T00:00:00", "2024-01-01T00:00:00+0000", "2024-01-01T00:00:00+01",
                 "2024-01-01T00:00:00+5:00", "2024-01-01T00:00Z", "2024-01-01T00:00:00.Z",
                 "2024-01-01T00:00:00,5Z", "2024-01-01T00:00:00 UTC", " 2024-01-01T00:00:00Z",
                 "2024-01-01T00:00:00Z ", "2024-01-01T24:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T12:00:00Z",
                 "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1-1-1T00:00:00Z", "1969-12-31T23:59:59Z",
                 "1970-01-01T00:00:00Z", "2024-01-01T00:00:60Z", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+24:00",
                 "2024-01-01T00:00:00-23:59", "2024-01-01T00:00:00\u221205:00", "abc", "",
                 "2024-02-29T23:59:60Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
                 "2024-01-01T00:00:00.12345678901234567890Z", "2024-12-31T23:59:60-00:00", "9999-12-31T23:59:60Z",
                 "0000-01-01T00:00:00+00:01", "0000-01-01T00:00:00-00:01", "9999-12-31T23:59:59-00:01",
                 "2024-06-31T00:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T23:59:60.5Z", "+2024-01-01T00:00:00Z",
                 "20240101T000000Z", "2024-1-01T00:00:00Z", "2024-01-01T0:00:00Z", "2024-01-01T00:00:00+00:00:00",
                 "2024-01-01T00:00:00.5+01:00", "2024-01-01T00:00:00\u2212\u221200:00", "2024-01-01T00:00:00\u00b100:00",
                 "\uff12024-01-01T00:00:00Z", "2024-01-01T00:00:00ZZ", "2024-01-01t00:00:00Z"]
PROPERTIES = ["plan", "age", "beta", "created", "country", "\u00e9", "e\u0301", "", " plan", "Plan", "tier",
              "score", "signup", "flag", "region"]
SPECIAL_ENTITIES = ["user-1", "12345", "\u00e9", "e\u0301", "a b", " ", "", "user-2", "USER-1", "\u65e5\u672c",
                    "caf\u00e9", "0", "-1", "user-1 ", "\u0000", "e" * 1000, "\U0001f600", "tab\there", "line\nbreak"]
SPECIAL_FLAG_KEYS = ["", "k\u00e9", "ke\u0301", "flag with space", "FLAG1", "\u65e5\u672c", "flag-1", "a/b",
                     "tab\tkey", "nl\nkey", "\u0001", 'q"uote', "back\\slash", "\U0001f600", "\u2028"]
SEGMENT_KEYS = ["s1", "s2", "s3", "s4", "s5", "s6", "", "\u00e9", "e\u0301", "seg a", "S1"]
VARIANT_KEYS = ["a", "b", "c", "d", "", "\u00e9", "control", "treatment"]
ATTACHMENTS = ["", "{}", '{"x":1}', '{"color":"blue","n":[1,2]}', "not json", '"s"', "\u00e9", "\u0001\u001f",
               "line\nbreak", "tab\t", "\u2028\u2029", "\U0001f600", 'quote"back\\slash', "\u007f", "\u0000"]

SPLITS = [[50, 50], [33.33, 33.33, 33.34], [1, 2, 3, 4], [0, 50, 50], [0.05, 99.95], [50, 0.01, 49.99],
          [99.99, 0.01], [0.01, 0.01, 0.01, 99.97], [6.85, 93.15], [60, 60], [10], [], [-5, 100], [0, 0],
          [1e39, 1], [0.001, 99.999], [50, 0.01, 0.01, 0.01, 0.01, 49.96], [100], [25, 25, 25, 25],
          [0.5, 0.5], [-10, -20], [12.5, 87.5], [100, 0], [0.1, 0.1, 99.8], [49.95, 50.05], [1e-7, 100],
          [1e-45, 100], [3e38, 3e38], [1e-320, 50], [3.4028235e38, 1], [0.1] * 10, [100 / 3] * 3, [1e-8, 1e-8],
          [7, 7, 7], [5e-324], [2e-45, 1e-45], [33.335, 33.335, 33.33], [0.04, 0.05, 0.06, 99.85], [1] * 20]
PERCENTAGES = [50, 50.000001, 50.00001, 0, -5, 150, 100, 33.3, 99.999, 0.0001, 63, 64, 24, 25, 1e39, -0.0,
               1e-45, 3.4028235e38, 5e-324, 99.99999999, 100.00000001, 63.99999, 0.5, -1e39, 98.99999999999]


EPOCH = datetime.datetime(1970, 1, 1)


class Generator:
    """Builds one document and its requests from a seed."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.v1 = self.r.random() < 0.3
        self.base_epochs = [self.r.randrange(946684800, 2208988800) for _ in range(3)] + [0, -1]
        self.entity_pool = list(SPECIAL_ENTITIES)
        self.property_pool = self.r.sample(PROPERTIES, 8)

    # ---- small helpers -------------------------------------------------------------------

    def chance(self, p):
        return self.r.random() < p

    def pick(self, items):
        return self.r.choice(items)

    def entity(self):
        if self.chance(0.25):
            return self.pick(self.entity_pool)
        style = self.r.randrange(4)
        n = self.r.randrange(1, 10**6)
        return [f"user-{n}", str(n), f"{n:08x}-{self.r.randrange(16**4):04x}", f"org/{n}"][style]

    def format_datetime(self, epoch):
        """An RFC 3339 spelling of `epoch` (whole seconds), in one of many styles (a few invalid)."""
        offset = self.pick([0, 0, 0, 7200, -18000, 19800, 3600, -34200])
        try:
            local = EPOCH + datetime.timedelta(seconds=epoch + offset)
        except OverflowError:
            return self.pick(ODD_DATETIMES)
        date = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        seconds = local.second
        if seconds == 59 and self.chance(0.3):
            seconds = 60  # a leap second: the engine reads it as :59 of the same minute
        time = f"{local.hour:02d}:{local.minute:02d}:{seconds:02d}"
        separator = self.pick(["T", "T", "T", "t", " "])
        fraction = self.pick(["", "", "", ".5", ".999", ".000000001", ".123456789123", ".0"])
        if offset == 0:
            zone = self.pick(["Z", "Z", "z", "+00:00", "-00:00"])
        else:
            sign = "+" if offset > 0 else self.pick(["-", "-", "\u2212"])
            zone = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
        text = f"{date}{separator}{time}{fraction}{zone}"
        if self.chance(0.05):
            text = self.pick([date, f"{date}T{time}", f"{date}T{time}+0000", text.replace(":", "", 1), text + " "])
        return text

    # ---- constraints ---------------------------------------------------------------------

    def constraint(self):
        kind = self.r.choices([STRING_TYPE, NUMBER_TYPE, BOOLEAN_TYPE, DATETIME_TYPE, ENTITY_TYPE, "unknown"],
                              [30, 22, 10, 18, 12, 4])[0]
        ops = {STRING_TYPE: STRING_OPS, NUMBER_TYPE: NUMBER_OPS, BOOLEAN_TYPE: BOOLEAN_OPS,
               DATETIME_TYPE: DATETIME_OPS, ENTITY_TYPE: STRING_OPS}.get(kind, ALL_OPS)
        roll = self.r.random()
        operator = self.pick(ops) if roll < 0.85 else self.pick(ODD_OPS if roll < 0.93 else ALL_OPS)
        if kind == "unknown":
            kind = self.pick(UNKNOWN_TYPES)
            value = self.pick(WORDS)
        elif kind in (STRING_TYPE, ENTITY_TYPE):
            if operator in ("isoneof", "isnotoneof") or self.chance(0.05):
                if self.chance(0.5):
                    value = self.pick(STRING_LISTS)
                else:
                    items = self.r.sample(WORDS + self.entity_pool[:6], self.r.randrange(0, 4))
                    value = json.dumps(items, ensure_ascii=self.chance(0.3))
            elif kind == ENTITY_TYPE and self.chance(0.5):
                value = self.pick(self.entity_pool)
            else:
                value = self.pick(WORDS) if self.chance(0.9) else ""
        elif kind == NUMBER_TYPE:
            if operator in ("isoneof", "isnotoneof") or self.chance(0.05):
                if self.chance(0.5):
                    value = self.pick(NUMBER_LISTS)
                else:
                    value = json.dumps([self.r.randrange(-5, 50) for _ in range(self.r.randrange(0, 4))])
            elif self.chance(0.8):
                value = str(self.pick([self.r.randrange(-5, 60), 0, 100, 2147483647, -2147483648]))
            else:
                value = self.pick(NUMBER_TEXTS)
        elif kind == BOOLEAN_TYPE:
            value = self.pick(BOOLEAN_TEXTS)
        else:
            if self.chance(0.85):
                value = self.format_datetime(self.pick(self.base_epochs) + self.r.randrange(-2, 3))
            else:
                value = self.pick(ODD_DATETIMES)
        constraint = {"type": kind, "property": self.pick(self.property_pool), "operator": operator, "value": value}
        if self.v1 and self.chance(0.7):
            constraint = {"id": f"c{self.r.randrange(10**6)}", **constraint}
        if self.chance(0.1):
            constraint["description"] = ""
        return constraint

    def segment(self, key):
        match_type = self.r.choices(["ALL_SEGMENT_MATCH_TYPE", "ANY_SEGMENT_MATCH_TYPE", "WHAT", "",
                                     "all_segment_match_type"], [45, 45, 4, 3, 3])[0]
        count = self.r.choices([0, 1, 2, 3, 4], [8, 40, 30, 15, 7])[0]
        segment = {"key": key, "name": "", "description": "", "matchType": match_type,
                   "constraints": [self.constraint() for _ in range(count)]}
        if self.chance(0.2):
            del segment["name"], segment["description"]
        return segment

    def segments(self, pool):
        count = self.r.choices([0, 1, 2, 3, 4], [10, 40, 30, 12, 8])[0]
        chosen = [self.pick(pool) for _ in range(count)]
        if chosen and self.chance(0.1):
            # The same key twice, with a different definition: the later one wins.
            chosen.append(self.segment(chosen[0]["key"]))
        return chosen

    def segment_operator(self):
        return self.r.choices(["OR_SEGMENT_OPERATOR", "AND_SEGMENT_OPERATOR", "ZZZ", "", "and_segment_operator"],
                              [45, 45, 4, 3, 3])[0]

    # ---- flags -----------------------------------------------------------------------------

    def distributions(self, variants):
        if self.chance(0.45):
            split = self.pick(SPLITS)
        elif self.chance(0.5):
            b = self.r.randrange(0, 1001)
            split = [b / 10, 100 - b / 10]
        else:
            k = self.r.randrange(1, 5)
            cuts = sorted(self.r.uniform(0, 100) for _ in range(k - 1))
            points = [0] + cuts + [100]
            split = [round(points[i + 1] - points[i], self.pick([0, 1, 2, 3, 6])) for i in range(k)]
        result = []
        for rollout in split:
            distribution = {"variantKey": self.pick(variants), "rollout": rollout}
            if self.chance(0.7):
                distribution["variantAttachment"] = self.pick(ATTACHMENTS)
            if self.v1 or self.chance(0.2):
                distribution = {"id": f"d{self.r.randrange(10**6)}", "ruleId": "r", **distribution}
                if self.v1:
                    distribution["variantId"] = f"v{self.r.randrange(10**6)}"
            result.append(distribution)
        return result

    def rule(self, pool, variants, rank):
        rule = {"id": f"rule-{rank}", "rank": rank, "segmentOperator": self.segment_operator(),
                "segments": self.segments(pool), "distributions": self.distributions(variants)}
        if self.chance(0.08):
            rule["segments"] = self.pick([None, []])
            if rule["segments"] is None and self.chance(0.5):
                del rule["segments"]
        return rule

    def rollout(self, pool, rank):
        kind = self.r.choices(["threshold", "segment", "empty", "both", "nulls"], [40, 45, 5, 6, 4])[0]
        rollout = {"type": self.r.choices(["THRESHOLD_ROLLOUT_TYPE", "SEGMENT_ROLLOUT_TYPE", "UNKNOWN_ROLLOUT_TYPE",
                                           "BOGUS"], [40, 40, 10, 10])[0], "rank": rank}
        if self.chance(0.1):
            rollout = {}
        if kind in ("threshold", "both"):
            if self.chance(0.4):
                percentage = self.pick(PERCENTAGES)
            else:
                percentage = self.pick([self.r.randrange(0, 101), round(self.r.uniform(0, 100), 3)])
            rollout["threshold"] = {"percentage": percentage, "value": self.chance(0.5)}
        if kind in ("segment", "both"):
            segment = {"value": self.chance(0.5), "segments": self.segments(pool)}
            if self.chance(0.85):
                segment["segmentOperator"] = self.segment_operator()
            elif self.chance(0.5):
                segment["segmentOperator"] = None
            rollout["segment"] = segment
        if kind == "nulls":
            rollout["threshold"] = None
            rollout["segment"] = None
        return rollout

    def flag(self, key):
        flag_type = self.r.choices(["VARIANT_FLAG_TYPE", "BOOLEAN_FLAG_TYPE", None, "missing", "BOGUS",
                                    "boolean_flag_type"], [48, 42, 2, 4, 2, 2])[0]
        flag = {"key": key, "name": self.pick(["", "", key, "Name \u00e9"]), "description": "", "enabled": True,
                "type": flag_type}
        if flag_type == "missing":
            del flag["type"]
        flag["enabled"] = self.chance(0.85)
        description = self.r.choices(["", "text", "\u00e9 d", None, "missing"], [60, 20, 5, 5, 10])[0]
        if description == "missing":
            del flag["description"]
        else:
            flag["description"] = description
        if self.chance(0.6):
            flag["createdAt"] = "2026-08-22T10:00:00Z"
            flag["updatedAt"] = "2026-08-22T10:00:00.123Z"
        segment_pool = [self.segment(k) for k in self.r.sample(SEGMENT_KEYS, 5)]
        variants = self.r.sample(VARIANT_KEYS, self.r.randrange(1, 5))
        is_boolean = flag_type == "BOOLEAN_FLAG_TYPE"
        # Rules on boolean flags and rollouts on variant flags are ignored; include a few anyway.
        rule_count = self.r.choices([0, 1, 2, 3, 5], [15, 35, 25, 15, 10])[0] if not is_boolean else \
            self.r.choices([0, 1], [85, 15])[0]
        rollout_count = self.r.choices([0, 1, 2, 3, 5], [25, 30, 20, 15, 10])[0] if is_boolean else \
            self.r.choices([0, 1], [85, 15])[0]
        flag["rules"] = [self.rule(segment_pool, variants, i + 1) for i in range(rule_count)]
        flag["rollouts"] = [self.rollout(segment_pool, i + 1) for i in range(rollout_count)]
        for field in ("rules", "rollouts"):
            if not flag[field] and self.chance(0.3):
                if self.chance(0.5):
                    flag[field] = None
                else:
                    del flag[field]
        if self.chance(0.5):
            default = {"id": f"{key}/x", "key": self.pick(variants)}
            attachment = self.r.choices(["absent", "", "value", None], [40, 20, 35, 5])[0]
            if attachment == "value":
                default["attachment"] = self.pick(ATTACHMENTS[1:])
            elif attachment != "absent":
                default["attachment"] = attachment
            flag["defaultVariant"] = default
        elif self.chance(0.1):
            flag["defaultVariant"] = None
        return flag

    # ---- document --------------------------------------------------------------------------

    def document(self):
        namespace = "default" if self.chance(0.85) else self.pick(["prod", "team_a", "caf\u00e9"])
        self.namespace = namespace
        document_namespace = namespace
        if self.chance(0.06):
            document_namespace = self.pick(["other", "Default", namespace + " ", "", "cafe\u0301"])
        count = self.r.choices([2, 5, 10, 20, 40], [10, 20, 30, 25, 15])[0]
        keys = []
        for i in range(count):
            if keys and self.chance(0.08):
                keys.append(self.pick(keys))  # a duplicate key: the later flag replaces the earlier one
            elif self.chance(0.1):
                keys.append(self.pick(SPECIAL_FLAG_KEYS))
            else:
                keys.append(f"flag{i}")
        flags = [self.flag(k) for k in keys]
        document = {"namespace": {"key": document_namespace}, "flags": flags}
        if not self.v1:
            document["digest"] = "%040x" % self.r.getrandbits(160)
        elif self.chance(0.5):
            document["namespace"]["name"] = "Default"
        self.flags = flags
        self.effective = {}
        for flag in flags:
            self.effective[flag["key"]] = flag
        return document

    # ---- requests --------------------------------------------------------------------------

    def constraints_of(self, flag):
        found = []
        containers = []
        if flag.get("type") == "BOOLEAN_FLAG_TYPE":
            for rollout in flag.get("rollouts") or []:
                if rollout.get("segment"):
                    containers.append(rollout["segment"].get("segments") or [])
        else:
            for rule in flag.get("rules") or []:
                containers.append(rule.get("segments") or [])
        for segments in containers:
            for segment in segments:
                found.extend(segment["constraints"])
        return found

    def near_value(self, constraint):
        """A context value likely to satisfy (or nearly satisfy) the constraint."""
        kind, operator, value = constraint["type"], constraint["operator"], constraint["value"]
        if self.chance(0.1):
            return self.pick(WORDS + NUMBER_TEXTS + BOOLEAN_TEXTS + ODD_DATETIMES[:6])
        if kind in (STRING_TYPE, ENTITY_TYPE) or kind in UNKNOWN_TYPES:
            if operator in ("isoneof", "isnotoneof"):
                try:
                    items = json.loads(value)
                except ValueError:
                    items = None
                if isinstance(items, list) and items and self.chance(0.8):
                    item = self.pick(items)
                    return item if isinstance(item, str) else str(item)
                return self.pick(WORDS)
            if operator == "prefix":
                return value + self.pick(["", "x", " tail"])
            if operator == "suffix":
                return self.pick(["", "x", "head "]) + value
            if operator in ("contains", "notcontains"):
                return self.pick(["", "a", "\u00e9"]) + value + self.pick(["", "z"])
            if operator in ("empty", "notempty"):
                return self.pick(["", value, " "])
            return self.pick([value, value, value.upper(), value + " ", self.pick(WORDS)])
        if kind == NUMBER_TYPE:
            numbers = re.findall(r"-?\d+", value)
            if numbers and self.chance(0.85):
                n = int(self.pick(numbers)) + self.pick([0, 0, 0, 1, -1, 2])
                style = self.r.choices(["plain", "plus", "zeros", "space", "float", "exp"], [70, 8, 8, 5, 5, 4])[0]
                return {"plain": str(n), "plus": f"+{n}" if n >= 0 else str(n), "zeros": f"{n:05d}",
                        "space": f" {n}", "float": f"{n}.0", "exp": f"{n}e0"}[style]
            return self.pick(NUMBER_TEXTS)
        if kind == BOOLEAN_TYPE:
            if operator in ("true", "false") and self.chance(0.7):
                return self.pick([operator, "true", "false"])
            return self.pick(BOOLEAN_TEXTS)
        if kind == DATETIME_TYPE:
            return self.datetime_near(value)
        return self.pick(WORDS)

    def datetime_near(self, value):
        match = re.match(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})", value)
        if match and self.chance(0.85):
            try:
                parts = [int(g) for g in match.groups()]
                moment = datetime.datetime(*parts[:5], min(parts[5], 59))
            except ValueError:
                return self.pick(ODD_DATETIMES)
            epoch = int((moment - EPOCH).total_seconds())
            zone = re.search(r"(Z|z|[+\-\u2212]\d{2}:\d{2})$", value)
            if zone and zone.group(1) not in ("Z", "z"):
                sign = 1 if zone.group(1)[0] == "+" else -1
                epoch -= sign * (int(zone.group(1)[1:3]) * 3600 + int(zone.group(1)[4:6]) * 60)
            epoch += self.pick([0, 0, 0, 1, -1, 3600, -86400])
            return self.format_datetime(epoch)
        return self.pick(ODD_DATETIMES + [self.format_datetime(self.pick(self.base_epochs))])

    def context_and_entity(self, flag):
        context = {}
        entity = self.entity()
        if flag is not None:
            for constraint in self.constraints_of(flag):
                if not self.chance(0.65):
                    continue
                value = self.near_value(constraint)
                if constraint["type"] == ENTITY_TYPE:
                    entity = value
                else:
                    context[constraint["property"]] = value
        while self.chance(0.25):
            context[self.pick(self.property_pool)] = self.pick(WORDS + NUMBER_TEXTS)
        if self.chance(0.12):
            # A large context: from 8 pairs on, this engine's packed contexts find properties through an index.
            for _ in range(self.r.randint(8, 30)):
                context[self.pick(self.property_pool) + "-" + str(self.r.randint(0, 99))] = self.pick(WORDS)
        if self.chance(0.06):
            # Values that are not strings: the engine drops them, so they act as missing.
            context[self.pick(self.property_pool)] = self.pick([5, 1.5, True, False, None, {"a": "b"}, ["x"]])
        if self.chance(0.02):
            context["\u00e9"] = "composed"
            context["e\u0301"] = "decomposed"
        return context, entity

    def request_item(self):
        """(flag_key, actual flag or None)."""
        if self.chance(0.08):
            key = self.pick(["nope", "ke\u0301", " ", "", "FLAG0", "flag0 ", "missing-\u00e9"])
            return key, self.effective.get(key)
        key = self.pick(self.flags)["key"]
        return key, self.effective[key]

    def evaluation(self):
        key, flag = self.request_item()
        context, entity = self.context_and_entity(flag)
        return {"flag_key": key, "entity_id": entity, "context": context}, flag

    def requests(self, count):
        lines = []
        for _ in range(count):
            kind = self.r.choices(["single", "batch", "list"], [84, 13, 3])[0]
            if kind == "list":
                request = {"type": "list"}
            elif kind == "batch":
                size = self.r.choices([0, 1, 3, 6, 10], [8, 20, 35, 25, 12])[0]
                request = {"type": "batch", "requests": [self.evaluation()[0] for _ in range(size)]}
            else:
                item, flag = self.evaluation()
                actual = "boolean" if flag is not None and flag.get("type") == "BOOLEAN_FLAG_TYPE" else "variant"
                if self.chance(0.1):
                    actual = "variant" if actual == "boolean" else "boolean"  # a wrong-type call
                request = {"type": actual, **item}
            lines.append(json.dumps(request, ensure_ascii=self.chance(0.3), separators=(",", ":")))
        return lines


def write_case(seed, count, prefix):
    generator = Generator(seed)
    document = generator.document()
    requests = generator.requests(count)
    indent = generator.pick([None, None, 1])
    text = json.dumps(document, ensure_ascii=generator.chance(0.4), indent=indent)
    with open(prefix + ".document.json", "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(prefix + ".requests.jsonl", "w", encoding="utf-8") as f:
        f.write("\n".join(requests) + "\n")
    sidecar = prefix + ".namespace"
    if generator.namespace != "default":
        with open(sidecar, "w", encoding="utf-8") as f:
            f.write(generator.namespace + "\n")
    elif os.path.exists(sidecar):
        os.remove(sidecar)


SCHEMA_BASE = {
    "namespace": {"key": "default"},
    "flags": [
        {"key": "v", "name": "", "description": "d", "enabled": True, "type": "VARIANT_FLAG_TYPE",
         "rules": [{"segmentOperator": "OR_SEGMENT_OPERATOR",
                    "segments": [{"key": "s", "matchType": "ANY_SEGMENT_MATCH_TYPE",
                                  "constraints": [{"type": STRING_TYPE, "property": "p", "operator": "eq",
                                                   "value": "x"}]}],
                    "distributions": [{"variantKey": "a", "rollout": 100, "variantAttachment": "{}"}]}],
         "rollouts": [], "defaultVariant": {"id": "i", "key": "a", "attachment": "x"}},
        {"key": "b", "name": "", "enabled": True, "type": "BOOLEAN_FLAG_TYPE", "rules": [],
         "rollouts": [{"type": "SEGMENT_ROLLOUT_TYPE",
                       "segment": {"value": True, "segmentOperator": "OR_SEGMENT_OPERATOR",
                                   "segments": [{"key": "s", "matchType": "ANY_SEGMENT_MATCH_TYPE",
                                                 "constraints": []}]}},
                      {"threshold": {"percentage": 50, "value": True}}]},
    ],
}


def schema_cases():
    """(name, document text) pairs: one structural variation of SCHEMA_BASE each."""
    cases = []

    def edit(name, change):
        document = json.loads(json.dumps(SCHEMA_BASE))
        change(document)
        cases.append((name, json.dumps(document)))

    def variant(d):
        return d["flags"][0]

    def rule(d):
        return d["flags"][0]["rules"][0]

    def segment(d):
        return rule(d)["segments"][0]

    def constraint(d):
        return segment(d)["constraints"][0]

    def distribution(d):
        return rule(d)["distributions"][0]

    def boolean(d):
        return d["flags"][1]

    def segment_rollout(d):
        return boolean(d)["rollouts"][0]["segment"]

    def threshold(d):
        return boolean(d)["rollouts"][1]["threshold"]

    def setter(get, field, value):
        return lambda d: get(d).__setitem__(field, value)

    def remover(get, field):
        return lambda d: get(d).pop(field)

    root = lambda d: d  # noqa: E731
    edit("base", lambda d: None)
    for get, prefix, field in [(root, "document", "namespace"), (root, "document", "flags"),
                               (lambda d: d["namespace"], "namespace", "key"),
                               (variant, "flag", "key"), (variant, "flag", "name"), (variant, "flag", "enabled"),
                               (variant, "flag", "type"), (variant, "flag", "description"),
                               (variant, "flag", "rules"), (variant, "flag", "rollouts"),
                               (variant, "flag", "defaultVariant"),
                               (lambda d: variant(d)["defaultVariant"], "default-variant", "id"),
                               (lambda d: variant(d)["defaultVariant"], "default-variant", "key"),
                               (lambda d: variant(d)["defaultVariant"], "default-variant", "attachment"),
                               (rule, "rule", "segmentOperator"), (rule, "rule", "segments"),
                               (rule, "rule", "distributions"),
                               (segment, "segment", "key"), (segment, "segment", "matchType"),
                               (segment, "segment", "constraints"),
                               (constraint, "constraint", "type"), (constraint, "constraint", "property"),
                               (constraint, "constraint", "operator"), (constraint, "constraint", "value"),
                               (distribution, "distribution", "variantKey"), (distribution, "distribution", "rollout"),
                               (distribution, "distribution", "variantAttachment"),
                               (lambda d: boolean(d)["rollouts"][0], "rollout", "segment"),
                               (lambda d: boolean(d)["rollouts"][1], "rollout", "threshold"),
                               (segment_rollout, "segment-rollout", "value"),
                               (segment_rollout, "segment-rollout", "segments"),
                               (segment_rollout, "segment-rollout", "segmentOperator"),
                               (threshold, "threshold", "percentage"), (threshold, "threshold", "value")]:
        edit(f"{prefix}-{field}-missing", remover(get, field))
        edit(f"{prefix}-{field}-null", setter(get, field, None))
        wrong = 7 if field not in ("rollout", "percentage") else "50"
        edit(f"{prefix}-{field}-wrong-type", setter(get, field, wrong))
    edit("document-flags-object", setter(root, "flags", {}))
    edit("document-flag-null-item", lambda d: d["flags"].append(None))
    edit("document-namespace-string", setter(root, "namespace", "default"))
    edit("flag-type-unknown", setter(variant, "type", "WHATEVER"))
    edit("flag-enabled-string", setter(variant, "enabled", "true"))
    edit("rollout-type-number", lambda d: boolean(d)["rollouts"][0].__setitem__("type", 7))
    edit("rollout-empty-object", lambda d: boolean(d)["rollouts"].append({}))
    edit("rollout-both-kinds", lambda d: boolean(d)["rollouts"][1].__setitem__("segment",
                                                                               segment_rollout(d)))
    edit("threshold-percentage-huge", setter(threshold, "percentage", 1e300))
    edit("distribution-rollout-integer-string", setter(distribution, "rollout", "1"))
    edit("digest-number", setter(root, "digest", 5))
    edit("digest-null", setter(root, "digest", None))
    edit("namespace-extra-field", lambda d: d["namespace"].__setitem__("name", "x"))
    edit("flag-extra-fields", lambda d: variant(d).update({"createdAt": "x", "metadata": {"a": [1]}}))
    base = json.dumps(SCHEMA_BASE)
    raw = [
        ("raw-top-level-array", "[" + base + "]"),
        ("raw-empty", ""),
        ("raw-empty-object", "{}"),
        ("raw-trailing-garbage", base + "x"),
        ("raw-trailing-whitespace", base + " \n\t"),
        ("raw-leading-whitespace", " \n" + base),
        ("raw-byte-order-mark", "\ufeff" + base),
        ("raw-duplicate-flag-field", base.replace('"key": "v",', '"key": "v", "key": "w",', 1)),
        ("raw-duplicate-top-field", base[:-1] + ', "flags": []}'),
        ("raw-rollout-overflow", base.replace('"rollout": 100', '"rollout": 1e400', 1)),
        ("raw-rollout-negative-zero", base.replace('"rollout": 100', '"rollout": -0.0', 1)),
        ("raw-rollout-huge-integer", base.replace('"rollout": 100', '"rollout": 100000000000000000000000', 1)),
        ("raw-percentage-exponent", base.replace('"percentage": 50', '"percentage": 5E1', 1)),
        ("raw-lone-surrogate", base.replace('"description": "d"', '"description": "\\ud800"', 1)),
        ("raw-surrogate-pair", base.replace('"description": "d"', '"description": "\\ud83d\\ude00"', 1)),
        ("raw-control-character", base.replace('"description": "d"', '"description": "a\x01b"', 1)),
        ("raw-escaped-slash", base.replace('"description": "d"', '"description": "a\\/b"', 1)),
        ("raw-nested-deep-extra", base[:-1] + ', "extra": ' + "[" * 100 + "]" * 100 + "}"),
        ("raw-nan", base.replace('"rollout": 100', '"rollout": NaN', 1)),
        ("raw-single-quotes", base.replace('"description": "d"', "'description': 'd'", 1)),
        ("raw-trailing-comma", base.replace('"rollouts": []', '"rollouts": [],', 1)[:-1] + "}"),
    ]
    cases.extend(raw)
    return cases


def main(argv):
    if argv[:1] == ["--schema-cases"] and len(argv) == 2:
        os.makedirs(argv[1], exist_ok=True)
        for name, text in schema_cases():
            with open(os.path.join(argv[1], name + ".document.json"), "wb") as f:
                f.write(text.encode("utf-8", "surrogatepass"))
        return 0
    if len(argv) == 3:
        write_case(int(argv[0]), int(argv[1]), argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
