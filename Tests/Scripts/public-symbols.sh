#!/usr/bin/env bash
# Public symbols per library product and per module, read from the built modules with swift-symbolgraph-extract.
#
#   Tests/Scripts/public-symbols.sh [BUILD_DIR]      (default: .build/debug; build the library targets first)
#
# A symbol is a public declaration: a type, case, property, method, initialiser or typealias, members of protocol
# extensions included; the defaults a type inherits from a standard-library protocol (`!=`, `hashValue`, ...) are
# counted apart, as "inherited". A product counts its targets' symbols, those of the modules they re-export whole
# (`@_exported import M`) and those of the types they re-export one by one (`@_exported import struct M.T`).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/.build/debug}" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# The C modules of the package and of its dependencies, so that the Swift modules that import them load.
args=()
while IFS= read -r map; do args+=(-Xcc "-fmodule-map-file=$map"); done < <(
    find "$build/" -maxdepth 3 -name '*.modulemap' -not -path '*-tool.build/*'
    find "$root/Sources" -name module.modulemap
)
while IFS= read -r include; do args+=(-Xcc "-I$include"); done < <(
    find "$root/Sources" "$root/.build/checkouts/" -type d -name include 2>/dev/null
)

modules=(Flipt FliptTesting FliptEngine FliptStore FliptSync FliptRelay FliptGzip)
for module in "${modules[@]}"; do
    [ -e "$build/Modules/$module.swiftmodule" ] || { echo "public-symbols.sh: $module is not built in $build" >&2; exit 1; }
    swift-symbolgraph-extract -module-name "$module" -target "$(uname -m)-unknown-linux-gnu" -I "$build/Modules" \
        -minimum-access-level public -output-dir "$out" "${args[@]}" >"$out/$module.log" 2>&1 || {
        cat "$out/$module.log" >&2
        exit 1
    }
done

(cd "$root" && swift package dump-package) >"$out/package.json"
python3 - "$out" "$root" "${modules[@]}" <<'EOF'
import glob, json, os, re, sys

out, root, modules = sys.argv[1], sys.argv[2], sys.argv[3:]

def symbols(module):
    """The public symbols of a module, its extensions of other modules' types included."""
    found = []
    for path in glob.glob(os.path.join(out, f"{module}.symbols.json")) + glob.glob(os.path.join(out, f"{module}@*.symbols.json")):
        found += json.load(open(path))["symbols"]
    return found

def tally(found):
    """(own, inherited): inherited are the standard-library protocols' defaults."""
    inherited = sum("::SYNTHESIZED::" in symbol["identifier"]["precise"] for symbol in found)
    return len(found) - inherited, inherited

def count(module):
    return tally(symbols(module))

def reexports(module):
    """Modules re-exported whole, and (module, type) pairs re-exported one by one."""
    whole, scoped = set(), set()
    for path in glob.glob(os.path.join(root, "Sources", module, "**", "*.swift"), recursive=True):
        text = open(path).read()
        whole |= set(re.findall(r"^@_exported import (\w+)\s*$", text, re.M))
        scoped |= set(re.findall(r"^@_exported import (?:struct|enum|class|protocol|typealias|func|var|let) (\w+)\.(\w+)\s*$", text, re.M))
    return whole, scoped

counts = {module: count(module) for module in modules}
print(f"{'module':<14} {'public':>7} {'inherited':>10}")
for module in modules:
    print(f"{module:<14} {counts[module][0]:>7} {counts[module][1]:>10}")

package = json.load(open(os.path.join(out, "package.json")))
print()
print(f"{'library product':<16} {'public':>7} {'inherited':>10}  modules")
for product in package["products"]:
    if "library" not in product["type"]:
        continue
    members, scoped = [], set()
    for target in product["targets"]:
        whole, types = reexports(target)
        scoped |= types
        for module in [target, *sorted(whole)]:
            if module not in members:
                members.append(module)
    own = sum(counts.get(m, (0, 0))[0] for m in members)
    inherited = sum(counts.get(m, (0, 0))[1] for m in members)
    for module in sorted({m for m, _ in scoped} - set(members)):
        names = {t for m, t in scoped if m == module}
        picked = [s for s in symbols(module) if s["pathComponents"][0] in names]
        own += tally(picked)[0]
        inherited += tally(picked)[1]
        members.append(f"{len(names)} types of {module}")
    print(f"{product['name']:<16} {own:>7} {inherited:>10}  {' + '.join(members)}")
EOF
