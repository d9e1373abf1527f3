"""The leanest correct Python of the thread stage: one producer, WORKERS
consumer threads over queue.Queue(CAPACITY), no work, no task_done/join
bookkeeping; one sentinel per consumer ends it. Each consumer counts what
it took, and the counts must add up to ITEMS.
Prints items per second.  usage: lean_queue_threads.py ITEMS WORKERS CAPACITY"""
import queue
import sys
import threading
import time


def consumer(q, counts):
    get = q.get
    n = 0
    while get() is not None:
        n += 1
    counts.append(n)


def main():
    n, workers, cap = (int(a) for a in sys.argv[1:4])
    q = queue.Queue(maxsize=cap)
    counts = []
    t0 = time.perf_counter()
    ts = [threading.Thread(target=consumer, args=(q, counts)) for _ in range(workers)]
    for t in ts:
        t.start()
    put = q.put
    for i in range(n):
        put(i)  # blocks when full: backpressure
    for _ in range(workers):
        put(None)
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    assert sum(counts) == n, (sum(counts), n)
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    main()
