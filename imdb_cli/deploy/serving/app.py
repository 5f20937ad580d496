"""The FastAPI application of `imdb serve`: its routes, its limits and its one-line errors.

- ``POST /predict`` with ``{"texts": ["...", ...]}`` (a pair model: ``[["first", "second"], ...]``)
  answers ``{"predictions": [...]}``: one record per text, in the request's order, as ``imdb
  predict`` writes them (``line`` is the text's 1-based position in the request).
- ``POST /`` speaks Hugging Face's inference protocol for text classification:
  ``{"inputs": "text" | [...], "parameters": {"top_k": ..., "function_to_apply": ...}}`` answers
  ``[[{"label": ..., "score": ...}, ...], ...]``, one list per input, highest score first.
- ``GET /health`` says what is served (open without the API key); ``GET /metrics`` is Prometheus';
  ``GET /openapi.json`` and ``/docs`` describe every route.

Texts of all requests go into one queue, run together in batches (:mod:`.batching`). A request the
server does not take is answered with a 4xx status and ``{"error": "one line"}``; an overloaded
queue with 503 and ``Retry-After``; a request past ``request_timeout`` with 504; the server goes on.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.
import asyncio
import contextlib
import logging

import torch

from imdb_cli.deploy.serving.batching import Batcher, Predictor, QueueFull
from imdb_cli.deploy.serving.metrics import Metrics, MetricsMiddleware
from imdb_cli.deploy.serving.middleware import ApiKey, JsonBody
from imdb_cli.deploy.serving.schemas import (
    RECORDS,
    ErrorBody,
    InferenceRequest,
    InferenceResponse,
    PairsInferenceRequest,
    PairsRequest,
    Predictions,
    TextsRequest,
)

RETRY_AFTER_S = 1
"""What a 503 tells the client to wait before it tries again."""

log = logging.getLogger("uvicorn.error")


class Refusal(Exception):
    """A request the server answers with an error status and a one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


ERRORS = {
    400: {"model": ErrorBody, "description": "the body is not JSON"},
    401: {"model": ErrorBody, "description": "no or a wrong API key (with --api_key_env)"},
    413: {"model": ErrorBody, "description": "more than --max_texts texts, or a body over --max_request_bytes"},
    422: {"model": ErrorBody, "description": "a body or a text the server does not take"},
    500: {"model": ErrorBody, "description": "the model failed on a text"},
    503: {"model": ErrorBody, "description": "more than --max_queue texts waiting: try again after Retry-After"},
    504: {"model": ErrorBody, "description": "no answer within --request_timeout"},
}


def label_scores(task, outputs: list, function: str | None, top_k: int | None) -> InferenceResponse:
    """The Inference API's answer for each text: its labels and scores, highest first. ``outputs``
    are each text's logits and scores (:class:`~.batching.Predictor`); a regression's output is its value."""
    names = task.label_names
    if task.name == "regression":
        values, function = torch.tensor([[s] for _, s in outputs]), function or "none"
    else:
        values = torch.tensor([logits for logits, _ in outputs])
        function = function or ("sigmoid" if task.name == "multi_label" else "softmax")
    values = {"softmax": values.softmax(-1), "sigmoid": values.sigmoid(), "none": values}[function]
    ranked = (sorted(zip(names, row, strict=True), key=lambda pair: -pair[1])[:top_k] for row in values.tolist())
    return [[{"label": name, "score": score} for name, score in labels] for labels in ranked]


def one_line(error: dict) -> str:
    """A pydantic error as ``where: what``, e.g. ``texts[1]: empty or only spaces``; never its input,
    which may be long or not printable."""
    where = ""
    for part in error["loc"][1:]:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    message = error["msg"].removeprefix("Value error, ")
    return f"{where or 'the body'}: {message}"


def create_app(
    predictor: Predictor,
    info: dict,
    *,
    max_batch_size: int,
    max_wait_ms: float,
    max_texts: int,
    max_queue: int,
    request_timeout: float,
    max_request_bytes: int,
    api_key: str | None = None,
):
    """The FastAPI application serving ``predictor`` (see the module's docstring)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from imdb_cli import __version__

    task, pairs = predictor.task, info["pairs"]
    metrics = Metrics()
    batcher = Batcher(predictor, max_batch_size, max_wait_ms, max_queue, metrics.observe_batch)
    metrics.watch_queue(batcher.queue.qsize)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker = asyncio.create_task(batcher.work())
        yield
        worker.cancel()

    app = FastAPI(
        title="imdb-cli",
        version=__version__,
        summary=f"{info['task']} of {info['model']}",
        lifespan=lifespan,
        responses={code: ERRORS[code] for code in (401,)} if api_key else None,
    )
    app.state.batcher = batcher

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """A wrong route or method in the same one-line form as every other error."""
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return error(400, f"the body is not JSON: {first['ctx']['error']} at character {first['loc'][-1]}")
        return error(422, one_line(first))

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        return error(exc.status, str(exc), exc.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    async def outputs_of(request: Request, texts: list) -> list:
        """The model's outputs for ``texts``, through the batcher, or a :class:`Refusal`."""
        request.state.texts = len(texts)
        if len(texts) > max_texts:
            raise Refusal(413, f"{len(texts)} texts in one request: at most {max_texts} (--max_texts)")
        try:
            return await asyncio.wait_for(batcher.submit(texts), request_timeout)
        except QueueFull as full:
            raise Refusal(503, f"the server is busy: {full}", {"Retry-After": str(RETRY_AFTER_S)}) from None
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise Refusal(504, f"no answer within {request_timeout:g} s (--request_timeout)") from None
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else ""
            log.error("%s %s: 500: %s", request.method, request.url.path, reason, exc_info=err)
            raise Refusal(500, f"prediction failed: {type(err).__name__}: {reason}") from None

    @app.get("/health")
    async def health() -> dict:
        """What is served, and how many batches have run. Open without the API key."""
        return {"status": "ok", **info, "batches_run": batcher.batches}

    predict_body = PairsRequest if pairs else TextsRequest
    record = RECORDS[task.name]

    @app.post("/predict", response_model=Predictions[record], responses=ERRORS)
    async def predict(body: predict_body, request: Request):
        """The records ``imdb predict`` writes, one per text, in the request's order."""
        texts = [tuple(pair) for pair in body.texts] if pairs else body.texts
        outputs = await outputs_of(request, texts)
        return {"predictions": [{"line": i, **task.record(s)} for i, (_, s) in enumerate(outputs, start=1)]}

    inference_body = PairsInferenceRequest if pairs else InferenceRequest

    @app.post("/", response_model=InferenceResponse, responses=ERRORS)
    async def inference(body: inference_body, request: Request):
        """Hugging Face's inference protocol for text classification (``InferenceClient(model=URL)``)."""
        texts = [(pair.text, pair.text_pair) for pair in body.inputs] if pairs else body.inputs
        parameters = body.parameters
        outputs = await outputs_of(request, texts)
        return label_scores(task, outputs, parameters and parameters.function_to_apply, parameters and parameters.top_k)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        """The server's metrics in Prometheus' text format."""
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    app.add_middleware(JsonBody, max_request_bytes=max_request_bytes)
    if api_key is not None:
        app.add_middleware(ApiKey, key=api_key)
    routes = frozenset(route.path for route in app.routes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
    return app
