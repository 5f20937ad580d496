"""Texts of concurrent requests run together: the :class:`Batcher` queue and the :class:`Predictor`
that turns a batch of texts into the model's outputs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import torch


class Predictor:
    """Texts (or pairs) to each text's logits and scores (what ``imdb predict`` turns into a record),
    one batch at a time.

    Args:
        model: a built :class:`~imdb_cli.model.SentimentClassifier` in eval mode.
        encode: the data's tokenization (:meth:`imdb_cli.data.tokenization.Encoder.encode`).
        collate: pads a list of samples into a batch (:class:`imdb_cli.data.batching.PadCollate`).
        context: the precision the model runs in (Lightning's precision plugin's ``forward_context``).
        device: where the model is.
    """

    def __init__(self, model, encode: Callable, collate: Callable, context: Callable, device: torch.device) -> None:
        self.model, self.encode, self.collate, self.context, self.device = model, encode, collate, context, device
        self.task = model.task

    def __call__(self, texts: Sequence) -> list[tuple[list[float], list[float] | float]]:
        """The logits and scores of ``texts``, in their order: run longest first, in groups of similar length
        (in one group for an ONNX export, which runs every text alone, unpadded)."""
        columns = self.encode(list(texts))
        samples = [{name: values[i] for name, values in columns.items()} for i in range(len(texts))]
        order = sorted(range(len(samples)), key=lambda i: len(samples[i]["input_ids"]), reverse=True)
        result: list = [None] * len(texts)
        unpadded = self.model.runtime is not None
        for group in [order] if unpadded else similar_lengths(order, [len(s["input_ids"]) for s in samples]):
            for index, outputs in zip(group, self._run([samples[i] for i in group]), strict=True):
                result[index] = outputs
        return result

    def _run(self, samples: list[dict]) -> list[tuple[list[float], list[float] | float]]:
        batch = self.collate(samples)
        inputs = [batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")]
        inputs = [t.to(self.device) if t is not None else None for t in inputs]
        with torch.inference_mode(), self.context():
            logits = self.model(*inputs).float()
            scores = self.task.scores(logits)
        return list(zip(logits.cpu().tolist(), scores.float().cpu().tolist(), strict=True))


MIN_LENGTH_SHARE = 0.75
"""A padded batch holds texts of at least this share of its longest text's tokens. Padded positions
cost as much as real ones (attention's cost grows with the square of the padded length): on a 2-core
CPU, eight random reviews padded to the longest ran slower in one int8 ONNX batch (of an export that
padded) than one by one (docs: guides/serving.md)."""


def similar_lengths(order: list[int], lengths: list[int]) -> list[list[int]]:
    """``order`` (indices, longest first) cut into groups whose texts are all at least
    :data:`MIN_LENGTH_SHARE` of their group's longest."""
    groups: list[list[int]] = []
    for index in order:
        if groups and lengths[index] >= MIN_LENGTH_SHARE * lengths[groups[-1][0]]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class QueueFull(Exception):
    """The queue has no room for a request's texts: the server is overloaded, the client retries later."""


class Batcher:
    """Texts of concurrent requests, run together in batches of at most ``max_batch_size``.

    The first text waiting opens a batch; the batch closes when it is full, or ``max_wait_ms``
    later. Batches run one at a time, in a worker thread: requests arriving meanwhile wait in the
    queue and fill the next batch. ``max_batch_size`` 1 runs every text alone: no batching. A request
    whose texts would make more than ``max_queue`` wait is refused whole (:class:`QueueFull`).
    ``observe(size, seconds)`` is told of every batch run.
    """

    def __init__(
        self,
        run: Callable[[list], list],
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.observe = observe
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0

    async def submit(self, texts: Sequence) -> list:
        """The outputs of ``texts``, in their order, once the batches that hold them have run.
        Cancelled (a client that left, a request past its timeout), its texts are not run."""
        if self.queue.qsize() + len(texts) > self.max_queue:
            raise QueueFull(f"{self.queue.qsize()} texts are waiting: at most {self.max_queue} (--max_queue)")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in texts]
        for text, future in zip(texts, futures, strict=True):
            self.queue.put_nowait((text, future))
        return list(await asyncio.gather(*futures))

    async def work(self) -> None:
        """Run batches for as long as the server runs."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch_size:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                    break
            batch = [(text, future) for text, future in batch if not future.done()]
            if batch:
                await self._run(batch)

    async def _run(self, batch: list) -> None:
        """Run one batch; if it fails, run its texts one by one, so that only the text that fails
        fails its request and the others get their outputs. The server goes on either way."""
        start = time.perf_counter()
        try:
            outputs = await asyncio.to_thread(self.run, [text for text, _ in batch])
        except Exception as err:
            if len(batch) > 1:
                for item in batch:
                    await self._run([item])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(err)
            return
        self.batches += 1
        if self.observe is not None:
            self.observe(len(batch), time.perf_counter() - start)
        for (_, future), result in zip(batch, outputs, strict=True):
            if not future.done():
                future.set_result(result)
