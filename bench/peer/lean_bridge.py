"""The leanest correct Python of thread → async → thread, no work: a
producer thread hands items to the event loop with call_soon_threadsafe
(a semaphore of CAPACITY is its backpressure); a task moves them into a
queue.Queue(CAPACITY) read by a worker thread, with put_nowait while there
is room and a put in the default executor when it is full, so the loop
never blocks. Prints items per second.  usage: lean_bridge.py ITEMS CAPACITY"""
import asyncio
import queue
import sys
import threading
import time


def main():
    n, cap = int(sys.argv[1]), int(sys.argv[2])
    out_q = queue.Queue(maxsize=cap)
    done = []

    def worker():
        get = out_q.get
        count = 0
        while get() is not None:
            count += 1
        done.append(count)

    async def run():
        loop = asyncio.get_running_loop()
        in_q = asyncio.Queue()  # bounded by `room`
        room = threading.Semaphore(cap)

        def produce():
            acquire, call = room.acquire, loop.call_soon_threadsafe
            put = in_q.put_nowait
            for i in range(n):
                acquire()
                call(put, i)
            call(put, None)

        p = threading.Thread(target=produce)
        p.start()
        get, release, put = in_q.get, room.release, out_q.put_nowait
        while True:
            x = await get()
            if x is not None:
                release()
            try:
                put(x)
            except queue.Full:
                await loop.run_in_executor(None, out_q.put, x)
            if x is None:
                break
        p.join()

    w = threading.Thread(target=worker)
    t0 = time.perf_counter()
    w.start()
    asyncio.run(run())
    w.join()
    dt = time.perf_counter() - t0
    assert done == [n], (done, n)
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    main()
