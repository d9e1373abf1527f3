"""The leanest correct Python of the async stage: one producer task, TASKS
consumer tasks over asyncio.Queue(CAPACITY), no work, no semaphore (the
queue's bound is the backpressure) and no task_done/join bookkeeping; one
sentinel per consumer ends it. The consumers' counts must add up to ITEMS.
Prints items per second.  usage: lean_asyncio_queue.py ITEMS TASKS CAPACITY"""
import asyncio
import sys
import time


async def consumer(q):
    get = q.get
    n = 0
    while await get() is not None:
        n += 1
    return n


async def main():
    n, tasks, cap = (int(a) for a in sys.argv[1:4])
    q = asyncio.Queue(maxsize=cap)
    t0 = time.perf_counter()
    cons = [asyncio.create_task(consumer(q)) for _ in range(tasks)]
    put = q.put
    for i in range(n):
        await put(i)  # awaits when full
    for _ in range(tasks):
        await put(None)
    total = sum(await asyncio.gather(*cons))
    dt = time.perf_counter() - t0
    assert total == n, (total, n)
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
