#!/usr/bin/env python3
"""Where a dashboard bundle's bytes go, by crate and by our own modules.

Reads `twiggy top -f csv` of a bundle built with its names kept
(`./dev size --crates` builds one per bundle: wasm-bindgen --keep-debug,
then wasm-opt -Oz -g, so the code is the shipped code with names) and sums
the functions' shallow sizes by the crate, or for `frontend` and `shared`
the module, that names them. Generic code is counted where it is defined
(a `serde_json` deserializer for one of our types is `serde_json`), so the
crates of the view layer (`tachys`, `reactive_graph`) include the code
generated for our views.

usage: crate_sizes.py <twiggy.csv> [rows]
"""
import collections
import csv
import re
import sys

# Prefixes counted apart, most specific first.
OURS = [
    "frontend::pages::tuning", "frontend::pages::job", "frontend::pages::history",
    "frontend::pages::workers", "frontend::pages::knob_chart", "frontend::pages::charts",
    "frontend::pages::jobs", "frontend::pages::records", "frontend::pages::lessons",
    "frontend::pages::new_job", "frontend::pages", "frontend::form", "frontend::i18n",
    "frontend::live", "frontend::api", "frontend", "shared::lab", "shared::spec",
    "shared::metrics", "shared::ws", "shared::api", "shared::workers", "shared",
]


BUNDLES = ("jobs", "job", "new", "history", "tuning", "workers")
PRIMITIVES = {"f64", "f32", "u64", "u32", "usize", "i64", "i32", "str", "char", "bool"}


def owner(name):
    if name.startswith(("data segment", "data[")):
        return "(data: strings, tables)"
    if name.startswith("code["):
        return "(code without a name)"
    for prefix in OURS:
        if re.search(r"(^|[<\s&(])" + re.escape(prefix) + "::", name):
            return prefix
    # `<T as tachys::…>::f`: a generic impl counts for its trait's crate;
    # `<f64 as core::fmt::Display>` for the trait's too.
    generic = re.match(r"<&?(?:mut )?([A-Za-z_][A-Za-z0-9_]*) as ([^>]+)>", name)
    if generic and (len(generic.group(1)) == 1 or generic.group(1) in PRIMITIVES):
        name = generic.group(2)
    crate = re.split(r"::|<|>| |\[", name.lstrip("<&*( ").removeprefix("mut "))[0]
    if crate in BUNDLES:
        return "(the bundle's main: its routes)"
    if crate in PRIMITIVES:
        return "core"
    return crate or name


def main():
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    sizes = collections.Counter()
    total = 0
    with open(sys.argv[1], newline="") as f:
        for row in csv.DictReader(f):
            name = row["Name"]
            if "subsection" in name or name.startswith("custom section"):
                continue  # names and bindgen's metadata: not shipped
            size = int(row["ShallowSize"])
            sizes[owner(name)] += size
            total += size
    print("| crate or module | bytes | share |")
    print("|---|---:|---:|")
    for key, size in sizes.most_common(rows):
        print(f"| `{key}` | {size:,} | {100 * size / total:.1f}% |")
    print(f"| all code and data | {total:,} | 100% |")


if __name__ == "__main__":
    main()
