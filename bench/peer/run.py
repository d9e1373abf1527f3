"""Peer benchmark: the same shapes through `queuelab run`, through the
article's own Python templates, and through the leanest correct Python of
each shape (`lean_*.py`), in one run on one machine, as ratios. The goals
hold against the lean column: a doubter writes the leanest Python.

usage: python3 bench/peer/run.py [--items N] [--lines N] [--bin PATH] [--repeat K]

Build the binary first: cargo build --release -p server --bin queuelab
Each figure is the median of --repeat runs; the three sides alternate,
so a noisy neighbour slows all of them. Prints a Markdown table (and the machine's
load) to paste into docs/benchmarks.md."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NOOP = {"kind": "spin", "micros": 0}


def stage(name, runtime, workers, capacity=1000):
    s = {"name": name, "runtime": runtime, "workers": workers,
         "queue": {"capacity": capacity, "when_full": "block"}, "op": NOOP}
    if runtime == "async":
        s["concurrency"] = workers
    return s


def counter_source(n):
    return {"kind": "synthetic", "count": n, "payload": "counter"}


def queuelab(binary, spec, workdir):
    path = os.path.join(workdir, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    out = subprocess.run([binary, "run", path, "--json", "--data-dir",
                          os.path.join(workdir, "data")],
                         check=True, capture_output=True, text=True, cwd=workdir)
    report = json.loads(out.stdout)
    assert report["balanced"], report["accounting"]
    return report["throughput"]


def python(script, *args):
    out = subprocess.run([sys.executable, os.path.join(HERE, script), *map(str, args)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def log_file(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"k{i}", "level": ("INFO", "WARN", "ERROR")[i % 3],
                                "msg": f"request {i} served", "ts": 1700000000 + i}) + "\n")


def medians(k, *sides):
    """The median of `k` runs of each side, the sides taking turns."""
    runs = [[] for _ in sides]
    for _ in range(k):
        for side, out in zip(sides, runs):
            out.append(side())
    return tuple(statistics.median(r) for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2_000_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/queuelab"))
    a = ap.parse_args()
    n, k = a.items, a.repeat
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        def ql(spec):
            return lambda: queuelab(a.bin, spec, tmp)

        spec = {"name": "peer-threads", "source": counter_source(n),
                "stages": [stage("w", "thread", 4)], "sink": {"kind": "null"}}
        rows.append(("thread stage, 1 source / 4 workers, no work, capacity 1000",
                     "§2.1 queue.Queue", 20,
                     *medians(k, ql(spec), lambda: python("queue_threads.py", n, 4, 1000),
                             lambda: python("lean_queue_threads.py", n, 4, 1000))))

        spec = {"name": "peer-async", "source": counter_source(n),
                "stages": [stage("w", "async", 4)], "sink": {"kind": "null"}}
        rows.append(("async stage, 1 source / 4 tasks, no work, capacity 1000",
                     "§2.2 asyncio.Queue", 5,
                     *medians(k, ql(spec), lambda: python("asyncio_queue.py", n, 4, 1000),
                             lambda: python("lean_asyncio_queue.py", n, 4, 1000))))

        spec = {"name": "peer-bridge", "source": counter_source(n),
                "stages": [stage("a", "thread", 1), stage("b", "async", 1), stage("c", "thread", 1)],
                "sink": {"kind": "null"}}
        bridged = max(n // 4, 1)
        rows.append(("thread → async → thread, no work",
                     "§5 call_soon_threadsafe bridge", 10,
                     *medians(k, ql(spec), lambda: python("bridge.py", bridged, 1000),
                             lambda: python("lean_bridge.py", bridged, 1000))))

        lines = os.path.join(tmp, "logs.jsonl")
        log_file(lines, a.lines)
        counter = iter(range(1_000_000))

        def ql_log():
            db = os.path.join(tmp, f"ql-{next(counter)}.db")
            spec = {"name": "peer-log", "source": {"kind": "file", "path": lines},
                    "stages": [{"name": "parse", "runtime": "thread", "workers": 2,
                                "op": {"kind": "parse_json"}}],
                    "sink": {"kind": "sqlite", "path": db, "table": "logs", "key": "id",
                             "columns": ["level", "msg", "ts"], "batch": {"size": 500}}}
            return queuelab(a.bin, spec, tmp)

        def py_log(script):
            return lambda: python(script, lines, os.path.join(tmp, f"py-{next(counter)}.db"))

        rows.append((f"{a.lines // 1000}k clean JSON lines: file → parse_json (2 threads) → SQLite upsert, batch 500",
                     "§6.1 template", 5,
                     *medians(k, ql_log, py_log("log_pipeline.py"), py_log("lean_log_pipeline.py"))))

    load = os.getloadavg()
    print(f"items {n:,}, lines {a.lines:,}, median of {k}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| shape | QueueLab items/s | article's Python template | template items/s | ratio "
          "| leanest Python items/s | ratio | goal (against the leanest) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for shape, peer, goal, q, p, lean in rows:
        met = "✓" if q / lean >= goal else "✗"
        print(f"| {shape} | {q:,.0f} | {peer} | {p:,.0f} | {q / p:.2f}× "
              f"| {lean:,.0f} | **{q / lean:.2f}×** | ≥ {goal}× {met} |")


if __name__ == "__main__":
    main()
