#!/usr/bin/env bash
# scripts/check-functions.py must name an 81-line function planted in a copy of the tree
# (file, line and length), pass one of exactly 80 lines, and catch long lambdas: one at
# namespace level, and a CLI11 callback that makes its registering function long.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
script="$root/scripts/check-functions.py"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT

statements() { # N: N lines of a function body
    local i
    for ((i = 0; i < $1; i++)); do echo "    x += $i;  // a { in a comment"; done
}

# A tree with nothing too long: exit 0 and the one-line OK.
mkdir -p "$tree/small/cli"
{
    echo 'int exactly80(int x,'
    echo '                int y) {'
    statements 76
    echo '    return x + y;  /* } */'
    echo '}'
} >"$tree/small/cli/ok.cpp"
out=$(python3 "$script" --root "$tree/small" 2>&1) || { echo "FAIL: an 80-line function was refused: $out"; exit 1; }
[[ $out == "functions: none over 80 lines in 1 files" ]] || { echo "FAIL: unexpected OK line: $out"; exit 1; }

# A copy of the tree with an 81-line function and two long lambdas planted in cli/.
cp -r "$root"/{base,bpf,loader,agent,cli} "$tree/"
{
    echo 'namespace nb::cli {'
    echo 'int planted(int x) {'
    echo '    const char* s = "}}}";'
    statements 77
    echo '    return x;'
    echo '}'
    echo 'const auto on_event = [](int x) {'
    statements 80
    echo '    return x;'
    echo '};'
    echo 'void add_planted(CLI::App& app) {'
    echo '    app.add_subcommand("planted", "{")->callback([&] {'
    statements 80
    echo '    });'
    echo '}'
    echo '}  // namespace nb::cli'
} >"$tree/cli/planted.cpp"
out=$(python3 "$script" --root "$tree" 2>&1) && { echo "FAIL: exit 0 with an 81-line function: $out"; exit 1; }
for want in 'cli/planted.cpp:2: planted is 81 lines (limit 80)' \
    'cli/planted.cpp:83: on_event (a lambda) is 83 lines (limit 80)' \
    'cli/planted.cpp:166: add_planted is 84 lines (limit 80)'; do
    grep -qxF "$want" <<<"$out" || { echo "FAIL: the report lacks '$want': $out"; exit 1; }
done
echo "PASS: the 81-line function and the long lambdas reported, the 80-line one accepted"
