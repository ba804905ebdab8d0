#!/usr/bin/env python3
"""Compare two answer files line by line, under the parity rules of the differential tests.

Usage:
    compare.py REQUESTS EXPECTED ACTUAL [--label NAME] [--max-shown N] [--no-summary]

Rules: both lines are parsed as JSON; `timestamp` and `request_duration_millis` are ignored
wherever they occur; `segment_keys` arrays and the array returned by a list-flags request are
compared as multisets (the official engine emits them in hash-map order). Everything else must
be equal, including which keys are present (an omitted `variant_attachment` differs from "").

Prints every mismatch (the request line, both answers and a field diff), then
`differential: N passed, M failed` alone on a line. Exits 1 on any mismatch.
Importable: `normalise(value, is_list)` and `compare_files(...)` are used by run-live.py.
"""

import json
import sys

IGNORED = {"timestamp", "request_duration_millis"}


def canonical(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def normalise(value, is_list=False):
    """A comparable form of one parsed answer (ignored keys dropped, unordered arrays sorted)."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key in IGNORED:
                continue
            if key == "segment_keys" and isinstance(item, list):
                result[key] = sorted(item, key=canonical)
            elif key == "result" and is_list and isinstance(item, list):
                result[key] = sorted((normalise(flag) for flag in item), key=canonical)
            else:
                result[key] = normalise(item)
        return result
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def differences(expected, actual, path="$"):
    """Readable paths where two normalised values differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                found.append(f"{path}.{key}: missing in actual (expected {canonical(expected[key])})")
            elif key not in expected:
                found.append(f"{path}.{key}: unexpected in actual ({canonical(actual[key])})")
            else:
                found.extend(differences(expected[key], actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        found = []
        for index, (e, a) in enumerate(zip(expected, actual)):
            found.extend(differences(e, a, f"{path}[{index}]"))
        return found
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: expected {canonical(expected)}, actual {canonical(actual)}"]
    return []


def compare_line(request_line, expected_line, actual_line):
    """None when equal under the rules, else a list of difference strings."""
    try:
        is_list = json.loads(request_line).get("type") == "list"
    except ValueError:
        is_list = False
    try:
        expected = normalise(json.loads(expected_line), is_list)
    except ValueError as error:
        return [f"expected line is not JSON: {error}"]
    try:
        actual = normalise(json.loads(actual_line), is_list)
    except ValueError as error:
        return [f"actual line is not JSON: {error}"]
    found = differences(expected, actual)
    return found or None


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def compare_files(requests_path, expected_path, actual_path, label="", max_shown=50, out=sys.stdout):
    """Compare; print mismatches; return (passed, failed)."""
    requests = read_lines(requests_path)
    expected = read_lines(expected_path)
    actual = read_lines(actual_path)
    passed = failed = shown = 0
    prefix = f"[{label}] " if label else ""
    if len(expected) != len(requests) or len(actual) != len(requests):
        print(f"{prefix}line counts differ: {len(requests)} requests, {len(expected)} expected, "
              f"{len(actual)} actual", file=out)
    for index, request in enumerate(requests):
        e = expected[index] if index < len(expected) else "<no line>"
        a = actual[index] if index < len(actual) else "<no line>"
        found = compare_line(request, e, a)
        if found is None:
            passed += 1
            continue
        failed += 1
        if shown < max_shown:
            shown += 1
            print(f"{prefix}MISMATCH at request {index + 1}", file=out)
            print(f"  request:  {request}", file=out)
            print(f"  expected: {e}", file=out)
            print(f"  actual:   {a}", file=out)
            for line in found:
                print(f"  diff:     {line}", file=out)
    if failed > shown:
        print(f"{prefix}… {failed - shown} more mismatches not shown", file=out)
    return passed, failed


def main(argv):
    label, max_shown, summary = "", 50, True
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--label":
            label = argv[i + 1]
            i += 2
        elif argv[i] == "--max-shown":
            max_shown = int(argv[i + 1])
            i += 2
        elif argv[i] == "--no-summary":
            summary = False
            i += 1
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    passed, failed = compare_files(*args, label=label, max_shown=max_shown)
    if summary:
        print(f"differential: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
