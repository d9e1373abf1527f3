"""A/B of two queuelab binaries on the peer shapes: each round runs binary A
then binary B on the same shape, so a noisy neighbour slows both alike.

usage: python3 bench/peer/ab.py A_BIN B_BIN [--rounds K] [--lines N] [--items N]

Prints each shape's per-round figures and the medians (items or lines per
second), for a change whose effect is smaller than the machine's noise."""
import argparse
import os
import statistics
import tempfile

import run as R


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=2_000_000)
    args = ap.parse_args()
    bins = {"A": args.a, "B": args.b}
    with tempfile.TemporaryDirectory() as tmp:
        lines = os.path.join(tmp, "logs.jsonl")
        R.log_file(lines, args.lines)
        counter = iter(range(1_000_000))

        def log_spec():
            db = os.path.join(tmp, f"ab-{next(counter)}.db")
            return {"name": "peer-log", "source": {"kind": "file", "path": lines},
                    "stages": [{"name": "parse", "runtime": "thread", "workers": 2,
                                "op": {"kind": "parse_json"}}],
                    "sink": {"kind": "sqlite", "path": db, "table": "logs", "key": "id",
                             "columns": ["level", "msg", "ts"], "batch": {"size": 500}}}

        n = args.items
        shapes = {
            "log pipeline (lines/s)": log_spec,
            "thread stage, 4 workers": lambda: {
                "name": "peer-threads", "source": R.counter_source(n),
                "stages": [R.stage("w", "thread", 4)], "sink": {"kind": "null"}},
            "async stage, 4 tasks": lambda: {
                "name": "peer-async", "source": R.counter_source(n),
                "stages": [R.stage("w", "async", 4)], "sink": {"kind": "null"}},
        }
        for name, spec in shapes.items():
            res = {k: [] for k in bins}
            for _ in range(args.rounds):
                for k, b in bins.items():
                    res[k].append(R.queuelab(b, spec(), tmp))
            med = {k: statistics.median(v) for k, v in res.items()}
            print(f"{name}: A {med['A']:,.0f}  B {med['B']:,.0f}  B/A {med['B'] / med['A']:.3f}"
                  f"  (rounds: A {[round(x) for x in res['A']]}, B {[round(x) for x in res['B']]})")
    print("load average %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
