"""The article's §6.1 thread log pipeline as written: a producer thread reads
lines into a queue.Queue(maxsize=5000); four consumers parse JSON and write
batches of 500 with executemany into SQLite.  usage: log_pipeline.py FILE DB
Prints lines per second."""
import json
import queue
import sqlite3
import sys
import threading
import time

DB = None


def parse(log_line: str) -> dict:
    d = json.loads(log_line)
    d["ts"] = time.time()
    return d


def writer(rows):
    conn = sqlite3.connect(DB)
    conn.executemany(
        "INSERT INTO logs(level,msg,ts) VALUES(?,?,?)",
        [(r["level"], r["msg"], r["ts"]) for r in rows],
    )
    conn.commit()
    conn.close()


def main_thread_pipeline(source_iter):
    q = queue.Queue(maxsize=5000)
    stop = object()

    def prod():
        for line in source_iter:
            q.put(line)
        q.put(stop)

    def cons():
        buf = []
        while True:
            x = q.get()
            if x is stop:
                q.put(stop)
                q.task_done()
                break
            try:
                buf.append(parse(x))
                if len(buf) >= 500:
                    writer(buf)
                    buf.clear()
            except Exception:
                pass
            q.task_done()
        if buf:
            writer(buf)

    pt = threading.Thread(target=prod)
    pt.start()
    cs = [threading.Thread(target=cons) for _ in range(4)]
    [c.start() for c in cs]
    pt.join()
    # The article's q.join() here never returns (the re-put sentinel stays
    # unfinished); joining the consumers waits for the same work.
    [c.join() for c in cs]


def main():
    global DB
    path, DB = sys.argv[1], sys.argv[2]
    conn = sqlite3.connect(DB)
    conn.execute("CREATE TABLE IF NOT EXISTS logs(level TEXT, msg TEXT, ts REAL)")
    conn.commit()
    conn.close()
    with open(path) as f:
        lines = sum(1 for _ in f)
    t0 = time.perf_counter()
    with open(path) as f:
        main_thread_pipeline(f)
    dt = time.perf_counter() - t0
    conn = sqlite3.connect(DB)
    (rows,) = conn.execute("SELECT count(*) FROM logs").fetchone()
    conn.close()
    assert rows == lines, (rows, lines)
    print(f"{lines / dt:.0f}")


if __name__ == "__main__":
    main()
