#!/usr/bin/env bash
# Regenerate the committed differential fixtures in Tests/Differential/Fixtures/ from the official engine.
#
#   Tests/Differential/make-fixtures.sh [PYTHON]
#
# PYTHON (or $FLIPT_PYTHON, default /tmp/fvenv/bin/python) must have PyPI flipt-client==1.4.5 installed.
# Writes:
#   Fixtures/seed-S.{document.json,requests.jsonl,expected.jsonl[,namespace]}   random documents (generate.py)
#   Fixtures/edge.{document.json,requests.jsonl,expected.jsonl}                 the §8 quirks (edge.py)
#   Fixtures/schema/NAME.{document.json,requests.jsonl,expected.jsonl}          structural variations the
#                                                                                official engine accepts
#   Fixtures/rejected/NAME.json                                                  variations it rejects
set -euo pipefail
unset RUST_BACKTRACE
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-${FLIPT_PYTHON:-/tmp/fvenv/bin/python}}"
fixtures="$here/Fixtures"
seeds=(11 22 33 44 55 66 77 88)
requests_per_seed=400

rm -rf "$fixtures"
mkdir -p "$fixtures/schema" "$fixtures/rejected"
pairs=()
for seed in "${seeds[@]}"; do
    python3 "$here/generate.py" "$seed" "$requests_per_seed" "$fixtures/seed-$seed"
    pairs+=("$fixtures/seed-$seed.document.json" "$fixtures/seed-$seed.requests.jsonl"
            "$fixtures/seed-$seed.expected.jsonl")
done
python3 "$here/edge.py" "$fixtures/edge"
pairs+=("$fixtures/edge.document.json" "$fixtures/edge.requests.jsonl" "$fixtures/edge.expected.jsonl")

# Structural variations: the official engine decides which are rejected.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 "$here/generate.py" --schema-cases "$work"
"$python" "$here/official.py" --check-rejected "$work"/*.document.json > "$work/verdicts.txt" || true
while read -r verdict path _; do
    path="${path%:}"
    name="$(basename "$path" .document.json)"
    if [ "$verdict" = "rejected" ]; then
        cp "$path" "$fixtures/rejected/$name.json"
    else
        cp "$path" "$fixtures/schema/$name.document.json"
        cat > "$fixtures/schema/$name.requests.jsonl" <<'EOF'
{"type":"list"}
{"type":"variant","flag_key":"v","entity_id":"u","context":{"p":"x"}}
{"type":"variant","flag_key":"v","entity_id":"u","context":{}}
{"type":"boolean","flag_key":"b","entity_id":"u","context":{}}
{"type":"boolean","flag_key":"b","entity_id":"user-7","context":{}}
{"type":"batch","requests":[{"flag_key":"v","entity_id":"u","context":{"p":"x"}},{"flag_key":"b","entity_id":"u","context":{}},{"flag_key":"w","entity_id":"u","context":{}}]}
EOF
        pairs+=("$fixtures/schema/$name.document.json" "$fixtures/schema/$name.requests.jsonl"
                "$fixtures/schema/$name.expected.jsonl")
    fi
done < "$work/verdicts.txt"

"$python" "$here/official.py" --pairs "${pairs[@]}"
echo "fixtures: $(ls "$fixtures"/*.document.json | wc -l) documents, $(ls "$fixtures"/schema/*.document.json | wc -l) schema variations accepted, $(ls "$fixtures"/rejected/*.json | wc -l) rejected; $(du -sh "$fixtures" | cut -f1) in all"
