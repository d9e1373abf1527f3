"""The article's §5 bridge, both ways, with no work: a producer thread hands
items to the event loop with call_soon_threadsafe into an asyncio.Queue; a
task moves them on into a queue.Queue (the article's disk_q) read by a
worker thread.  usage: bridge.py ITEMS CAPACITY"""
import asyncio
import queue
import sys
import threading
import time


def main():
    n, cap = int(sys.argv[1]), int(sys.argv[2])
    out_q = queue.Queue(maxsize=cap)  # thread side
    done = []

    def worker():
        count = 0
        while True:
            item = out_q.get()
            if item is None:
                out_q.task_done()
                break
            count += 1
            out_q.task_done()
        done.append(count)

    async def run():
        loop = asyncio.get_running_loop()
        in_q = asyncio.Queue(maxsize=cap)
        room = threading.Semaphore(cap)  # backpressure towards the thread

        def produce():
            for i in range(n):
                room.acquire()
                loop.call_soon_threadsafe(in_q.put_nowait, i)
            loop.call_soon_threadsafe(in_q.put_nowait, None)

        p = threading.Thread(target=produce)
        p.start()
        while True:
            x = await in_q.get()
            if x is not None:
                room.release()
            out_q.put(x)  # as the article does: a blocking put on the loop
            if x is None:
                break
        p.join()

    w = threading.Thread(target=worker)
    t0 = time.perf_counter()
    w.start()
    asyncio.run(run())
    w.join()
    dt = time.perf_counter() - t0
    assert done == [n]
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    main()
