#!/usr/bin/env python3
"""Check that the exported symbols of libmetaflow equal the version script
and the MF_EXTERN declarations of the public headers.

usage: check_symbols.py LIBRARY MAPFILE INCLUDEDIR
"""
import pathlib
import re
import subprocess
import sys


def header_symbols(incdir):
    syms = set()
    for h in sorted(pathlib.Path(incdir).rglob("*.h")):
        text = re.sub(r"/\*.*?\*/", " ", h.read_text(), flags=re.S)
        text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
        for m in re.finditer(r"MF_EXTERN\s*\([^)]*\)\s*\**\s*(\w+)\s*\(", text):
            syms.add(m.group(1))
    return syms


def map_symbols(mapfile):
    text = re.sub(r"/\*.*?\*/", " ", pathlib.Path(mapfile).read_text(), flags=re.S)
    syms, nodes = set(), []
    for node in re.finditer(r"(MF_[0-9.]+)\s*\{(.*?)\}\s*(MF_[0-9.]+)?\s*;", text, flags=re.S):
        nodes.append(node.group(1))
        body = node.group(2)
        glob = re.search(r"global:(.*?)(local:|$)", body, flags=re.S)
        if glob:
            for s in glob.group(1).split(";"):
                s = s.strip()
                if s:
                    syms.add(s)
    return syms, nodes


def library_symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms, versions = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        base = name.split("@")[0]
        if kind == "A":
            versions.add(base)
            continue
        syms.add(base)
        if "@@" in name:
            versions.add(name.split("@@")[1])
    return syms, versions


def main():
    lib, mapfile, incdir = sys.argv[1:4]
    failures = 0
    hdr = header_symbols(incdir)
    mapped, nodes = map_symbols(mapfile)
    exported, versions = library_symbols(lib)
    checks = [
        ("declared in headers but missing from the version script", hdr - mapped),
        ("in the version script but not declared in a header", mapped - hdr),
        ("declared but not exported by the library", hdr - exported),
        ("exported but not declared in a public header", exported - hdr),
        ("exported symbols outside the mf_ prefix", {s for s in exported if not s.startswith("mf_")}),
    ]
    for what, bad in checks:
        if bad:
            failures += 1
            print(f"FAIL: {len(bad)} symbol(s) {what}: {', '.join(sorted(bad))}")
        else:
            print(f"ok: no symbol {what}")
    if "MF_0.1" not in nodes or "MF_0.1" not in versions:
        failures += 1
        print(f"FAIL: version node MF_0.1 missing (map: {nodes}, library: {sorted(versions)})")
    else:
        print("ok: version node MF_0.1 present in the map and the library")
    print(f"{len(hdr)} public functions checked")
    print(f"{len(checks) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
