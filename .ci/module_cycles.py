#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

    python3 .ci/module_cycles.py CRATE_DIR...

A module is a file under CRATE_DIR/src (`a/mod.rs` and `a.rs` are `a`; a nested module counts
as its top-level module); it depends on every top-level module it names as `crate::NAME`
outside comments and before its `#[cfg(test)] mod` of tests (a module named inside a `use crate::{..}`
group is not seen: the workspace does not group module imports). Prints each cycle (a strongly
connected set of two or more modules) and exits 1 if there is one.
"""

import re
import sys
from pathlib import Path

TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+\w+\s*\{")


def graph(crate):
    src = Path(crate) / "src"
    edges = {}
    for path in src.rglob("*.rs"):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        if not parts:
            continue
        # The test module closes the file; a test-only item elsewhere still counts.
        code = TEST_MODULE.split(path.read_text(encoding="utf-8"))[0]
        code = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith("//"))
        edges.setdefault(parts[0], set()).update(re.findall(r"\bcrate::([a-z_0-9]+)", code))
    for module in edges:
        edges[module] = {d for d in edges[module] if d in edges and d != module}
    return edges


def cycles(edges):
    """Tarjan's strongly connected components of two or more modules."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    bad = False
    for crate in sys.argv[1:]:
        for component in cycles(graph(crate)):
            print(f"{crate}: modules import each other: {', '.join(component)}")
            bad = True
    if not bad:
        print(f"no module cycle in {len(sys.argv) - 1} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
