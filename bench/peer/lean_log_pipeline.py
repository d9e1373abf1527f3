"""The leanest correct Python of the log pipeline, and the same work as
QueueLab's: one process (threads would only share the GIL), json.loads per
line, rows upserted on the line's id with executemany, 500 rows per batch,
one transaction per batch, WAL journal with synchronous=NORMAL. The table
is the SQLite sink's: key, the record's text, the columns level, msg and
ts, and when the row was written.  usage: lean_log_pipeline.py FILE DB [PART]
Prints lines per second. PART splits the time for docs/benchmarks.md:
`parse` parses every line and writes nothing, `write` parses first and
times only the SQLite writes (the share no engine can take off SQLite)."""
import json
import sqlite3
import sys
import time

BATCH = 500
UPSERT = ("INSERT INTO logs (key, record, level, msg, ts, written_at) VALUES (?, ?, ?, ?, ?, ?) "
          "ON CONFLICT(key) DO UPDATE SET record = excluded.record, level = excluded.level, "
          "msg = excluded.msg, ts = excluded.ts, written_at = excluded.written_at")


def main():
    path, db = sys.argv[1], sys.argv[2]
    part = sys.argv[3] if len(sys.argv) > 3 else "all"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS logs (key TEXT PRIMARY KEY, record TEXT NOT NULL, "
                 "level, msg, ts, written_at REAL NOT NULL)")
    loads, now = json.loads, time.time
    lines = 0
    t0 = time.perf_counter()

    def write(rows):
        conn.execute("BEGIN")
        conn.executemany(UPSERT, rows)
        conn.execute("COMMIT")

    if part != "all":
        with open(path, encoding="utf-8") as f:
            rows = [(d["id"], line, d.get("level"), d.get("msg"), d.get("ts"), now())
                    for line in (raw.rstrip("\n") for raw in f) for d in (loads(line),)]
        t0, parsed = time.perf_counter(), len(rows)
        if part == "write":
            for i in range(0, parsed, BATCH):
                write(rows[i:i + BATCH])
        else:
            t0 = time.perf_counter()
            with open(path, encoding="utf-8") as f:
                for raw in f:
                    line = raw.rstrip("\n")
                    d = loads(line)
                    (d["id"], line, d.get("level"), d.get("msg"), d.get("ts"), now())
        print(f"{parsed / (time.perf_counter() - t0):.0f}")
        return
    with open(path, encoding="utf-8") as f:
        rows = []
        for line in f:
            line = line.rstrip("\n")
            d = loads(line)
            rows.append((d["id"], line, d.get("level"), d.get("msg"), d.get("ts"), now()))
            if len(rows) == BATCH:
                write(rows)
                lines += len(rows)
                rows = []
        if rows:
            write(rows)
            lines += len(rows)
    dt = time.perf_counter() - t0
    (count,) = conn.execute("SELECT count(*) FROM logs").fetchone()
    conn.close()
    assert count == lines, (count, lines)
    print(f"{lines / dt:.0f}")


if __name__ == "__main__":
    main()
