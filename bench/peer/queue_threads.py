"""The article's §2.1 (a thread pool over queue.Queue), with no work inside
the loop: one producer, WORKERS consumer threads, a queue of CAPACITY.
Prints items per second.  usage: queue_threads.py ITEMS WORKERS CAPACITY"""
import queue
import sys
import threading
import time


def producer(q, n):
    for i in range(n):
        q.put(i)  # blocks when full: backpressure
    q.put(None)  # sentinel


def consumer(q, results):
    while True:
        x = q.get()
        if x is None:
            q.put(None)  # pass the sentinel on
            q.task_done()
            break
        results.append(x * 2)
        q.task_done()


def main():
    n, workers, cap = (int(a) for a in sys.argv[1:4])
    q = queue.Queue(maxsize=cap)
    results = []
    t0 = time.perf_counter()
    ts = [threading.Thread(target=consumer, args=(q, results)) for _ in range(workers)]
    for t in ts:
        t.start()
    producer(q, n)
    # The article calls q.join() here, which never returns: the last
    # consumer puts the sentinel back and nobody takes it, so one task
    # stays unfinished. Joining the threads waits for the same work.
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    assert len(results) == n
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    main()
