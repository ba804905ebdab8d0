#!/usr/bin/env bash
# Public symbols per library product and per module, read from the built modules with swift-symbolgraph-extract.
#
#   Tests/Scripts/public-symbols.sh [BUILD_DIR]      (default: .build/debug; build the library targets first)
#
# A symbol is a public declaration: a type, case, property, method, initialiser or typealias, members of protocol
# extensions included; the defaults a type inherits from a standard-library protocol (`!=`, `hashValue`, ...) are
# counted apart, as "inherited". A product counts its targets' symbols and those of the modules they re-export
# whole with `@_exported import`.
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

def count(module):
    """(own, inherited) public symbols of a module, its extensions of other modules' types included."""
    own = inherited = 0
    for path in glob.glob(os.path.join(out, f"{module}.symbols.json")) + glob.glob(os.path.join(out, f"{module}@*.symbols.json")):
        for symbol in json.load(open(path))["symbols"]:
            if "::SYNTHESIZED::" in symbol["identifier"]["precise"]:
                inherited += 1
            else:
                own += 1
    return own, inherited

def reexports(module):
    names = set()
    for path in glob.glob(os.path.join(root, "Sources", module, "**", "*.swift"), recursive=True):
        names |= set(re.findall(r"^@_exported import (\w+)\s*$", open(path).read(), re.M))
    return names

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
    members = []
    for target in product["targets"]:
        for module in [target, *sorted(reexports(target))]:
            if module not in members:
                members.append(module)
    own = sum(counts.get(m, (0, 0))[0] for m in members)
    inherited = sum(counts.get(m, (0, 0))[1] for m in members)
    print(f"{product['name']:<16} {own:>7} {inherited:>10}  {' + '.join(members)}")
EOF
