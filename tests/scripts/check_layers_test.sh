#!/usr/bin/env bash
# scripts/check-layers.sh must fail on an upward include, naming file and line, and pass
# a tree whose includes only point down.
set -uo pipefail
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/check-layers.sh"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/base" "$tree/loader" "$tree/cli"
touch "$tree/base/a.hpp" "$tree/cli/x.hpp"
printf '#include <vector>\n#include "base/a.hpp"\n' >"$tree/loader/l.cpp"
out=$(bash "$script" --root "$tree" 2>&1)
grep -q "^loader/" <<<"$out" && { echo "FAIL: a downward include was reported: $out"; exit 1; }
printf '#pragma once\n\n#include "cli/x.hpp"\n' >"$tree/base/b.hpp"
out=$(bash "$script" --root "$tree" 2>&1) && { echo "FAIL: exit 0 with base/b.hpp including cli/"; exit 1; }
grep -q '^base/b.hpp:3: includes cli/x.hpp' <<<"$out" || { echo "FAIL: the report does not name base/b.hpp:3: $out"; exit 1; }
echo "PASS: upward include reported as base/b.hpp:3, downward one accepted"
