"""The leanest correct Python of the log pipeline, and the same work as
QueueLab's: one process (threads would only share the GIL), json.loads per
line, rows upserted on the line's id with executemany, 500 rows per batch,
one transaction per batch, WAL journal with synchronous=NORMAL. The table
is the SQLite sink's: key, the record's text, the columns level, msg and
ts, and when the row was written.  usage: lean_log_pipeline.py FILE DB
Prints lines per second."""
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
