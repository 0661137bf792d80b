#!/usr/bin/env python3
"""The function-length rule of docs/design.md: no function over 80 lines.

    scripts/check-functions.py [--root DIR] [--limit N]

Reads the C and C++ sources in base/ bpf/ loader/ agent/ cli/ (tests/ and bench/ are
exempt, and so is generated code: a file that says "DO NOT EDIT" or "@generated" near its
top). Prints `file:line: NAME is N lines (limit 80)` for each function longer than the
limit, counted from the line of its name to its closing brace, and exits 1; exits 0 with
a one-line OK otherwise.

A heuristic on clang-formatted code, not a parser: comments, string and character
literals and preprocessor lines are blanked, then braces are matched. Outside a function,
a `{` opens a function when what precedes it ends in a parameter list (with qualifiers or
a constructor's initializer list), or a lambda when it ends in a lambda introducer: a
lambda at namespace or class level (a callback table, a member initializer) is measured
on its own. Inside a function everything, lambdas and local classes included, counts as
part of that function: a long callback registered from a function makes that function
long.
"""
import argparse
import os
import re
import sys

DIRS = ("base", "bpf", "loader", "agent", "cli")
EXTS = (".c", ".h", ".cpp", ".hpp")
GENERATED = re.compile(r"DO NOT EDIT|@generated")
ACCESS = re.compile(r"\b(public|private|protected)\s*:(?!:)")
QUALIFIER = re.compile(
    r"\s*(?:const|volatile|noexcept(?:\s*\([^()]*\))?|override|final|mutable|constexpr|"
    r"&&|&|->\s*[\w:<>,\s*&]+?)\s*$"
)
TYPE_HEAD = re.compile(r"^\s*(?:template\s*<.*>\s*)?(?:typedef\s+)?(class|struct|union|enum)\b")
NAMESPACE_HEAD = re.compile(r'^\s*(?:inline\s+)?namespace\b|^\s*extern\s*"[^"]*"\s*$')
NAME_BEFORE = re.compile(r"(operator\s*\(\s*\)|operator\s*[^\s\w()]+|~?[A-Za-z_][\w:~]*)\s*$")


def blank(text):
    """Comments, literals and preprocessor lines replaced by spaces; newlines kept."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            # A directive, with its continuation lines (macros may hold braces).
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        line_start = c == "\n"
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and i + 1 < n and text[i + 1] == '"' and not _ident_char(text, i - 1):
            m = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i + m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2 : j]))
            i = j
        elif c in "\"'" and not (c == "'" and _ident_char(text, i - 1) and _digit_sep(text, i)):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j, n)
            # The closing quote stays; an unclosed literal ends at its line.
            out.append(c + " " * (j - i - 1))
            if j < n and text[j] == c:
                out.append(c)
                j += 1
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident_char(text, i):
    return i >= 0 and (text[i].isalnum() or text[i] == "_")


def _digit_sep(text, i):
    # 1'000'000: a C++14 digit separator, not a character literal.
    return text[i - 1].isdigit() and i + 1 < len(text) and text[i + 1].isalnum()


def matching_open(s, close_at, open_ch, close_ch):
    depth = 0
    for k in range(close_at, -1, -1):
        if s[k] == close_ch:
            depth += 1
        elif s[k] == open_ch:
            depth -= 1
            if depth == 0:
                return k
    return -1


def strip_qualifiers(s):
    while True:
        t = QUALIFIER.sub("", s)
        if t == s:
            return s.rstrip()
        s = t


def top_level_colon(s):
    """The index of a constructor's initializer-list colon (a lone ':' outside parens)."""
    depth = 0
    for k, c in enumerate(s):
        if c in "(<[":
            depth += 1
        elif c in ")>]":
            depth -= 1
        elif c == ":" and depth == 0:
            if s[k - 1 : k] != ":" and s[k + 1 : k + 2] != ":":
                return k
    return -1


def lambda_name(head):
    """The name for a lambda whose body opens after `head`, or None if it is no lambda."""
    s = strip_qualifiers(head)
    if s.endswith(")"):
        k = matching_open(s, len(s) - 1, "(", ")")
        if k < 0:
            return None
        s = s[:k].rstrip()
    if not s.endswith("]"):
        return None
    k = matching_open(s, len(s) - 1, "[", "]")
    if k < 0 or s[k + 1 : k + 2] == "[":
        return None
    before = s[:k].rstrip()
    if before and not re.search(r"(?:[=(,{?:]|\breturn|&&|\|\|)$", before):
        return None  # an array declarator, e.g. `int a[] {`
    var = re.search(r"([A-Za-z_]\w*)\s*=\s*$", before)
    return f"{var.group(1)} (a lambda)" if var else "a lambda"


def function_name(head):
    """The name of the function whose body opens after `head`, or None."""
    s = ACCESS.sub(" ", head)
    colon = top_level_colon(s)
    if colon >= 0:
        # A constructor: its body opens after a whole initializer list; a brace right
        # after a member's name is that member's initializer.
        if not s.rstrip().endswith((")", "}")):
            return None
        s = s[:colon]
    arrow = re.search(r"\)[\s\w&]*->", s)
    if arrow:
        s = s[: s.rfind("->", 0, arrow.end())]  # a trailing return type
    s = strip_qualifiers(s)
    if not s.endswith(")") or re.search(r"=\s*[^=]", s.split("(")[0]):
        return None
    k = matching_open(s, len(s) - 1, "(", ")")
    if k < 0:
        return None
    m = NAME_BEFORE.search(s[:k])
    if not m or m.group(1) in ("if", "for", "while", "switch", "catch", "return", "sizeof"):
        return None
    return re.sub(r"\s+", "", m.group(1))


def classify(head, enclosing):
    """(kind, name) of a `{` outside any function, after `head`: what precedes it since
    the last `;` or scope brace. Kinds: ns, type, init (data), func."""
    name = lambda_name(head)
    if name is not None:
        return "func", name
    if enclosing == "init":
        return "init", None
    if NAMESPACE_HEAD.search(head):
        return "ns", None
    if TYPE_HEAD.search(ACCESS.sub(" ", head)) and not strip_qualifiers(head).endswith(")"):
        return "type", None
    name = function_name(head)
    return ("func", name) if name else ("init", None)


def long_functions(text, limit):
    """(line, name, length) of each function in blanked `text` longer than `limit`."""
    found = []
    stack = []  # per open brace: (kind, name, first line); "block" inside a function
    head, head_line = "", 1  # head_line: the line of head[0]
    line = 1
    for c in text:
        in_func = any(kind == "func" for kind, _, _ in stack)
        if c == "{" and in_func:
            stack.append(("block", None, line))
        elif c == "{":
            kind, name = classify(head.strip(), stack[-1][0] if stack else "ns")
            start = line
            if kind == "func" and not name.endswith("a lambda)") and name != "a lambda":
                at = head.find(name.split("::")[-1].split("(")[0])
                start = head_line + head[:at].count("\n") if at >= 0 else line
            stack.append((kind, name, start))
            if kind == "init":
                head += c
            else:
                head, head_line = "", line
        elif c == "}" and stack:
            kind, name, start = stack.pop()
            if kind == "func" and not any(k == "func" for k, _, _ in stack):
                if line - start + 1 > limit:
                    found.append((start, name, line - start + 1))
            if kind == "init" or (stack and stack[-1][0] == "init"):
                head += c
            elif not in_func or kind == "func":
                head, head_line = "", line
        elif c == ";" and not in_func:
            head, head_line = "", line
        elif not in_func:
            if not head:
                head_line = line
            head += c
        if c == "\n":
            line += 1
    return found


def source_files(root):
    for d in DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(EXTS):
                    yield os.path.join(dirpath, f)


def main():
    ap = argparse.ArgumentParser(description="Lists functions longer than the limit.")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--limit", type=int, default=80)
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        print(f"check-functions: no directory {args.root}", file=sys.stderr)
        return 2
    status, files = 0, 0
    for path in source_files(root):
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        if GENERATED.search(text[:2000]):
            continue
        files += 1
        rel = os.path.relpath(path, root)
        for line, name, length in long_functions(blank(text), args.limit):
            print(f"{rel}:{line}: {name} is {length} lines (limit {args.limit})")
            status = 1
    if status == 0:
        print(f"functions: none over {args.limit} lines in {files} files")
    return status


if __name__ == "__main__":
    sys.exit(main())
