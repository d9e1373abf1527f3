"""The article's §2.2 (tasks over asyncio.Queue with a semaphore), with no
work inside the loop: one producer, TASKS consumers, a queue of CAPACITY.
Prints items per second.  usage: asyncio_queue.py ITEMS TASKS CAPACITY"""
import asyncio
import sys
import time


async def producer(q, n):
    for i in range(n):
        await q.put(i)  # awaits when full
    await q.put(None)  # sentinel


async def consumer(q, results, sem):
    while True:
        u = await q.get()
        if u is None:
            await q.put(None)
            q.task_done()
            break
        async with sem:  # the concurrency limit
            results.append(u)
        q.task_done()


async def main():
    n, tasks, cap = (int(a) for a in sys.argv[1:4])
    q = asyncio.Queue(maxsize=cap)
    sem = asyncio.Semaphore(tasks)
    results = []
    t0 = time.perf_counter()
    pro = asyncio.create_task(producer(q, n))
    cons = [asyncio.create_task(consumer(q, results, sem)) for _ in range(tasks)]
    await pro
    # The article awaits q.join() here, which never returns (the last
    # consumer's re-put sentinel stays unfinished); awaiting the consumers
    # waits for the same work.
    for c in cons:
        await c
    dt = time.perf_counter() - t0
    assert len(results) == n
    print(f"{n / dt:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
