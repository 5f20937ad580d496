"""`imdb serve`: a trained classifier behind an HTTP JSON endpoint, concurrent requests batched together.

- ``POST /predict`` with ``{"texts": ["...", ...]}`` (a pair model: ``[["first", "second"], ...]``)
  answers ``{"predictions": [...]}``: one record per text, in the request's order, as ``imdb
  predict`` writes them (``line`` is the text's 1-based position in the request).
- ``GET /health`` answers ``{"status": "ok", ...}`` with what is served.

Texts of all requests go into one queue; a worker takes up to ``max_batch_size`` of them, waiting at
most ``max_wait_ms`` after the first for more, and runs them sorted by length, texts of similar
length padded together (:func:`similar_lengths`; an ONNX export runs each text alone, one per core),
in a thread of its own, so that the server keeps accepting requests while the model computes. A
request whose body or texts pass the limits, or that is not what the endpoint takes, is answered
with a 4xx status and ``{"error": "one line"}``; the server goes on.
Built on FastAPI and uvicorn (the ``serve`` extra).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations (Request) at run time.
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

import torch

from imdb_cli.errors import UserError

EXTRA = "pip install fastapi uvicorn (imdb-cli's serve extra)"


class Predictor:
    """Texts (or pairs) to the scores ``imdb predict`` turns into records, one batch at a time.

    Args:
        model: a built :class:`~imdb_cli.model.SentimentClassifier` in eval mode.
        encode: the data's tokenization (:meth:`imdb_cli.data.tokenization.Encoder.encode`).
        collate: pads a list of samples into a batch (:class:`imdb_cli.data.batching.PadCollate`).
        context: the precision the model runs in (Lightning's precision plugin's ``forward_context``).
        device: where the model is.
    """

    def __init__(self, model, encode: Callable, collate: Callable, context: Callable, device: torch.device) -> None:
        self.model, self.encode, self.collate, self.context, self.device = model, encode, collate, context, device

    def __call__(self, texts: Sequence) -> list:
        """The scores of ``texts``, in their order: run longest first, in groups of similar length
        (in one group for an ONNX export, which runs every text alone, unpadded)."""
        columns = self.encode(list(texts))
        samples = [{name: values[i] for name, values in columns.items()} for i in range(len(texts))]
        order = sorted(range(len(samples)), key=lambda i: len(samples[i]["input_ids"]), reverse=True)
        result: list = [None] * len(texts)
        unpadded = self.model.runtime is not None
        for group in [order] if unpadded else similar_lengths(order, [len(s["input_ids"]) for s in samples]):
            for index, scores in zip(group, self._run([samples[i] for i in group]), strict=True):
                result[index] = scores
        return result

    def _run(self, samples: list[dict]) -> list:
        batch = self.collate(samples)
        inputs = [batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")]
        inputs = [t.to(self.device) if t is not None else None for t in inputs]
        with torch.inference_mode(), self.context():
            return self.model.task.scores(self.model(*inputs)).float().cpu().tolist()

    def record(self, line: int, scores) -> dict:
        return {"line": line, **self.model.task.record(scores)}


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


class Batcher:
    """Texts of concurrent requests, run together in batches of at most ``max_batch_size``.

    The first text waiting opens a batch; the batch closes when it is full, or ``max_wait_ms``
    later. Batches run one at a time, in a worker thread: requests arriving meanwhile wait in the
    queue and fill the next batch. ``max_batch_size`` 1 runs every text alone: no batching.
    """

    def __init__(self, run: Callable[[list], list], max_batch_size: int, max_wait_ms: float) -> None:
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0

    async def submit(self, texts: Sequence) -> list:
        """The scores of ``texts``, in their order, once the batches that hold them have run."""
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
            batch = [(text, future) for text, future in batch if not future.done()]  # a client that left
            if batch:
                await self._run(batch)

    async def _run(self, batch: list) -> None:
        """Run one batch; if it fails, run its texts one by one, so that only the text that fails
        fails its request and the others get their scores. The server goes on either way."""
        try:
            scores = await asyncio.to_thread(self.run, [text for text, _ in batch])
        except Exception as err:
            if len(batch) > 1:
                for item in batch:
                    await self._run([item])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(err)
            return
        self.batches += 1
        for (_, future), result in zip(batch, scores, strict=True):
            if not future.done():
                future.set_result(result)


class BadRequest(Exception):
    """A request the endpoint does not take: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_texts(body: bytes, pairs: bool, max_texts: int) -> list:
    """The texts of a ``/predict`` body, or :class:`BadRequest` saying what is wrong with it."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(400, f"the body is not JSON: {err}") from None
    what = "a list of [first, second] pairs of strings" if pairs else "a list of strings"
    if not isinstance(request, dict) or "texts" not in request:
        raise BadRequest(422, f'the body needs "texts": {what}')
    texts = request["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f'"texts" must be {what}')
    if not texts:
        raise BadRequest(422, '"texts" is empty: nothing to predict')
    if len(texts) > max_texts:
        raise BadRequest(413, f"{len(texts)} texts in one request: at most {max_texts} (--max_texts)")
    for i, text in enumerate(texts):
        parts = text if pairs else [text]
        ok = isinstance(parts, list) and len(parts) == (2 if pairs else 1) and all(isinstance(p, str) for p in parts)
        if not ok:
            raise BadRequest(422, f"texts[{i}] is not {'a pair of strings' if pairs else 'a string'}: {what}")
        if any(not p.strip() for p in parts):
            raise BadRequest(422, f"texts[{i}] is empty")
        try:
            for part in parts:
                part.encode("utf-8")
        except UnicodeEncodeError as err:  # valid JSON (a lone surrogate escape), no valid text
            raise BadRequest(422, f"texts[{i}] is not valid Unicode: {err.reason} at character {err.start}") from None
    return [tuple(t) for t in texts] if pairs else texts


def create_app(
    predictor: Predictor, info: dict, max_batch_size: int, max_wait_ms: float, max_texts: int, max_request_bytes: int
):
    """The FastAPI application: ``POST /predict`` and ``GET /health``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    batcher = Batcher(predictor, max_batch_size, max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker = asyncio.create_task(batcher.work())
        yield
        worker.cancel()

    app = FastAPI(title="imdb-cli", lifespan=lifespan)
    app.state.batcher = batcher

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """A wrong route or method in the same one-line form as every other error."""
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", **info, "batches_run": batcher.batches}

    @app.post("/predict")
    async def predict(request: Request):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_request_bytes:
            return error(413, f"the body is {declared} bytes: at most {max_request_bytes} (--max_request_bytes)")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_request_bytes:
                return error(413, f"the body is over {max_request_bytes} bytes (--max_request_bytes)")
        try:
            texts = parse_texts(bytes(body), info["pairs"], max_texts)
        except BadRequest as bad:
            return error(bad.status, str(bad))
        try:
            scores = await batcher.submit(texts)
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else ""
            logging.getLogger("uvicorn.error").error("POST /predict: 500: %s", reason, exc_info=err)
            return error(500, f"prediction failed: {type(err).__name__}: {reason}")
        return {"predictions": [predictor.record(line, s) for line, s in enumerate(scores, start=1)]}

    return app


def serve(model, datamodule, precision_context: Callable, device: torch.device, ckpt_path: str | None,
          weights_only: bool, host: str, port: int, max_batch_size: int, max_wait_ms: float, max_texts: int,
          max_request_bytes: int, access_log: bool) -> None:  # fmt: skip
    """Load the classifier, then serve it until interrupted (see :meth:`imdb_cli.trainer.Trainer.serve`)."""
    try:
        import uvicorn
    except ImportError:
        raise UserError(f"imdb serve needs FastAPI and uvicorn: {EXTRA}") from None
    from pathlib import Path

    from imdb_cli.data.batching import PadCollate
    from imdb_cli.deploy.export import is_trained_directory
    from imdb_cli.encoders import resolve

    served = Path(resolve(model.hparams.encoder))
    if ckpt_path is None and not is_trained_directory(served):
        raise UserError("imdb serve needs a trained classifier: --ckpt_path CKPT, or --model_dir DIR of imdb export")
    model.load_trained(ckpt_path, weights_only=weights_only)
    if model.runtime is None:
        model.to(device)
    encoder = datamodule.text_encoder()
    hp = datamodule.hparams
    collate = PadCollate(encoder.tokenizer.pad_token_id, hp.pad_to_multiple_of or 1, hp.max_length)
    predictor = Predictor(model, encoder.encode, collate, precision_context, device)
    info = {
        "model": ckpt_path or model.hparams.encoder,
        "runtime": "onnxruntime" if model.runtime is not None else "pytorch",
        "task": model.task.name,
        "labels": list(model.label_names),
        "pairs": not isinstance(hp.text_column, str),
        "max_length": hp.max_length,
        "max_batch_size": max_batch_size,
        "max_wait_ms": max_wait_ms,
        "max_texts": max_texts,
    }
    app = create_app(predictor, info, max_batch_size, max_wait_ms, max_texts, max_request_bytes)
    print(f"imdb: serving {info['model']} at http://{host}:{port} (POST /predict, GET /health)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
