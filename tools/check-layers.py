#!/usr/bin/env python3
"""check-layers.py — the engine's layers have no circles.

Two graphs over engine/, one node per part (x.c with its x.h):
  includes  part a -> part b when a's .c or .h has #include "b.h";
  calls     part a -> part b when a.o needs a symbol that b.o defines
            (nm on the static library, one member per part).
Prints every circle (strongly connected component of more than one part)
and exits 1 if there is any.

  tools/check-layers.py [--lib build/engine/libvlm.a] [--src engine] [-v]
"""
import argparse
import collections
import os
import re
import subprocess
import sys


def part(name):
    return re.sub(r"\.(c|h)(\.o)?$", "", os.path.basename(name))


def include_graph(src):
    g = collections.defaultdict(set)
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        a = part(f)
        g[a]
        for line in open(os.path.join(src, f), encoding="utf-8"):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if m and "/" not in m.group(1):
                b = part(m.group(1))
                if b != a:
                    g[a].add(b)
    return g


def call_graph(lib):
    out = subprocess.run(["nm", lib], capture_output=True, text=True, check=True).stdout
    defined, needed, member = {}, collections.defaultdict(set), None
    for line in out.splitlines():
        if line.endswith(".o:"):
            member = part(line[:-1])
            needed[member]
            continue
        f = line.split()
        if member is None or len(f) < 2:
            continue
        kind, sym = f[-2], f[-1]
        if kind == "U":
            needed[member].add(sym)
        elif kind in ("T", "D", "B", "R", "V", "W", "G", "C"):
            defined.setdefault(sym, member)
    g = collections.defaultdict(set)
    for a, syms in needed.items():
        g[a]
        for s in syms:
            b = defined.get(s)
            if b and b != a:
                g[a].add(b)
    return g


def circles(g):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def report(name, g, verbose):
    found = circles(g)
    for comp in found:
        edges = [f"{a}->{b}" for a in comp for b in sorted(g[a]) if b in comp]
        print(f"{name} circle: {' '.join(comp)}  ({', '.join(edges)})")
    if verbose:
        for a in sorted(g):
            print(f"  {name}: {a} -> {' '.join(sorted(g[a]))}")
    print(f"{name}: {len(g)} parts, {len(found)} circles")
    return len(found)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=os.path.join(root, "engine"))
    ap.add_argument("--lib", default=os.path.join(root, "build", "engine", "libvlm.a"))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    n = report("includes", include_graph(a.src), a.verbose)
    if os.path.exists(a.lib):
        n += report("calls", call_graph(a.lib), a.verbose)
    else:
        print(f"calls: {a.lib} not built, skipped")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
