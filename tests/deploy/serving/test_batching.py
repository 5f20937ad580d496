"""The batcher on its own: texts of concurrent requests batched, in order, a failure confined to its
request, the queue bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from imdb_cli.deploy.serving.batching import Batcher, QueueFull, similar_lengths


def test_the_batcher_batches_concurrent_texts_keeps_their_order_and_survives_a_failure():
    sizes: list[int] = []

    def run(texts: list) -> list:
        sizes.append(len(texts))
        if "boom" in texts:
            raise RuntimeError("boom")
        return [text.upper() for text in texts]

    async def scenario(max_batch_size: int):
        batcher = Batcher(run, max_batch_size, max_wait_ms=20, max_queue=64)
        worker = asyncio.create_task(batcher.work())
        requests = [[f"r{r}t{t}" for t in range(r % 3 + 1)] for r in range(10)]
        answers = await asyncio.gather(*(batcher.submit(texts) for texts in requests))
        failed = await asyncio.gather(batcher.submit(["boom"]), return_exceptions=True)
        after = await batcher.submit(["still"])
        worker.cancel()
        return requests, answers, failed, after

    requests, answers, failed, after = asyncio.run(scenario(max_batch_size=8))
    assert answers == [[t.upper() for t in texts] for texts in requests]
    assert isinstance(failed[0], RuntimeError) and after == ["STILL"]
    assert max(sizes) == 8 and len(sizes) < sum(map(len, requests))  # 19 texts in few batches of at most 8
    sizes.clear()
    asyncio.run(scenario(max_batch_size=1))
    assert set(sizes) == {1}


def test_a_text_that_fails_its_batch_fails_only_its_own_request():
    def run(texts: list) -> list:
        if "boom" in texts:
            raise RuntimeError("boom")
        return [text.upper() for text in texts]

    async def scenario():
        batcher = Batcher(run, max_batch_size=16, max_wait_ms=50, max_queue=64)
        worker = asyncio.create_task(batcher.work())
        requests = [["a", "b"], ["boom"], ["c"], ["d", "boom", "e"]]
        answers = await asyncio.gather(*(batcher.submit(texts) for texts in requests), return_exceptions=True)
        worker.cancel()
        return answers

    good, bad, alone, mixed = asyncio.run(scenario())
    assert good == ["A", "B"] and alone == ["C"]  # they shared a batch with "boom"
    assert isinstance(bad, RuntimeError) and isinstance(mixed, RuntimeError)


def test_a_request_that_would_overfill_the_queue_is_refused_whole_and_the_others_are_answered():
    release = threading.Event()
    sizes: list[int] = []

    def run(texts: list) -> list:
        release.wait(10)
        sizes.append(len(texts))
        return [text.upper() for text in texts]

    async def scenario():
        batcher = Batcher(run, max_batch_size=2, max_wait_ms=0, max_queue=4)
        worker = asyncio.create_task(batcher.work())
        first = asyncio.create_task(batcher.submit(["a", "b"]))  # taken into the running batch
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(batcher.submit(["c", "d", "e"]))  # waits in the queue: 3 of 4
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match=r"3 texts are waiting: at most 4 \(--max_queue\)"):
            await batcher.submit(["f", "g"])
        release.set()
        answers = await asyncio.gather(first, waiting)
        worker.cancel()
        return answers

    assert asyncio.run(scenario()) == [["A", "B"], ["C", "D", "E"]]
    assert sum(sizes) == 5  # the refused texts never ran


def test_a_cancelled_request_is_not_run():
    ran: list[str] = []

    async def scenario():
        batcher = Batcher(lambda texts: ran.extend(texts) or texts, max_batch_size=8, max_wait_ms=100, max_queue=8)
        worker = asyncio.create_task(batcher.work())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(["late"]), 0.01)  # as a request past its timeout
        answer = await batcher.submit(["kept"])
        worker.cancel()
        return answer

    assert asyncio.run(scenario()) == ["kept"] and ran == ["kept"]


def test_similar_lengths_groups_texts_within_three_quarters_of_their_longest():
    lengths = [100, 80, 74, 40, 30, 10]
    assert similar_lengths(list(range(6)), lengths) == [[0, 1], [2], [3, 4], [5]]
