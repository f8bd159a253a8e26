#!/usr/bin/env python3
"""Fails if any crate of the workspace has an import cycle between its
modules (files): an edge A -> B when A names B through `crate::`, `super::`
or as a child module it uses. Run by scripts/test.sh."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["src", "domain/src", "types/src", "storage/src", "raft/src"]


def module_path(src, f):
    """`api/handlers.rs` -> ("api", "handlers"); `lib.rs`/`main.rs` -> ()."""
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text):
    # Unit tests sit at the end of a file, in `#[cfg(test)] mod tests`,
    # whose `super::` is the file itself.
    text = text.split("#[cfg(test)]\nmod ")[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def uses(text, me, modules):
    """The modules this file's code names."""
    found = set()
    # crate::a::b..., super::a..., self::a... and bare child paths `a::x`
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
        base, rest = m.group(1), [p for p in m.group(2).split("::") if p]
        if base == "crate":
            path = ()
        elif base == "super":
            path = me[:-1]
        else:
            path = me
        found |= longest(path, rest, modules)
    # a child module used by its bare name inside its parent (`use child::X`,
    # `child::f()`)
    for child in {m for m in modules if len(m) == len(me) + 1 and m[: len(me)] == me}:
        if re.search(r"(?<![:\w])" + re.escape(child[-1]) + r"::", text):
            found.add(child)
    found.discard(me)
    return found


def longest(path, rest, modules):
    best = None
    for i in range(len(rest) + 1):
        cand = tuple(path) + tuple(rest[:i])
        if cand in modules:
            best = cand
    return {best} if best is not None else set()


def cycles(crate):
    src = ROOT / crate
    files = {module_path(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    graph = {m: uses(strip_comments(f.read_text()), m, modules) for m, f in files.items()}
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def name(m):
    return "::".join(m) or "(root)"


bad = False
for crate in CRATES:
    for cycle in cycles(crate):
        bad = True
        print(f"{crate}: import cycle: " + " -> ".join(name(m) for m in cycle))
if bad:
    sys.exit(1)
print("no import cycle between the modules of " + ", ".join(CRATES))
