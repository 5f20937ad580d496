"""Run `imdb serve`: load the classifier, check who may call it, serve until SIGTERM or Ctrl-C.

A stop signal closes the listening socket, lets every request already received finish (its texts
still queued or in a batch are run), and ends with exit status 0: what Kubernetes expects of a pod
on a rollout. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from collections.abc import Callable

import torch

from imdb_cli.errors import UserError

EXTRA = "pip install fastapi uvicorn prometheus-client (imdb-cli's serve extra)"


def is_loopback(host: str) -> bool:
    """Whether ``host`` takes connections from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(api_key_env: str | None, host: str, allow_unauthenticated: bool) -> str | None:
    """The key every request must bring, read from the environment variable ``api_key_env`` (never
    from the command line or a config file, which others can read); refuse to listen beyond this
    machine without one, unless ``allow_unauthenticated``."""
    if api_key_env is None:
        if not is_loopback(host) and not allow_unauthenticated:
            raise UserError(
                f"--host {host} takes connections from other machines: give --api_key_env NAME (the key in the "
                "environment variable NAME), or --allow_unauthenticated behind a proxy that authenticates"
            )
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise UserError(f"--api_key_env {api_key_env}: the environment variable {api_key_env} is not set or empty")
    return key


def serve(model, datamodule, precision_context: Callable, device: torch.device, ckpt_path: str | None,
          weights_only: bool, host: str, port: int, max_batch_size: int, max_wait_ms: float, max_texts: int,
          max_queue: int, request_timeout: float, max_request_bytes: int, api_key_env: str | None,
          allow_unauthenticated: bool, access_log: bool) -> None:  # fmt: skip
    """Load the classifier, then serve it until stopped (see :meth:`imdb_cli.trainer.Trainer.serve`)."""
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError(f"imdb serve needs FastAPI, uvicorn and prometheus-client: {EXTRA}") from None
    from pathlib import Path

    from imdb_cli.data.batching import PadCollate
    from imdb_cli.deploy.export import is_trained_directory
    from imdb_cli.deploy.serving.app import create_app
    from imdb_cli.deploy.serving.batching import Predictor
    from imdb_cli.encoders import resolve

    key = api_key(api_key_env, host, allow_unauthenticated)
    if max_queue < max_texts:
        raise UserError(f"--max_queue {max_queue} is below --max_texts {max_texts}: a full request could never wait")
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
        "max_queue": max_queue,
        "request_timeout": request_timeout,
    }
    app = create_app(
        predictor, info, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_texts=max_texts,
        max_queue=max_queue, request_timeout=request_timeout, max_request_bytes=max_request_bytes, api_key=key,
    )  # fmt: skip
    access = f", key from ${api_key_env}" if key else ""
    print(f"imdb: serving {info['model']} at http://{host}:{port}{access} (POST /predict, POST /, GET /health, "
          "GET /metrics, GET /docs)", file=sys.stderr)  # fmt: skip
    config = uvicorn.Config(
        app, host=host, port=port, access_log=access_log, log_level="info", timeout_graceful_shutdown=request_timeout
    )
    stopped = run_until_stopped(uvicorn.Server(config))
    if stopped:
        print(f"imdb: stopped by {stopped}: every request received was answered", file=sys.stderr)


def run_until_stopped(server) -> str | None:
    """Run a uvicorn server until it is stopped; the name of the signal that stopped it, if one did.

    uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again in the handler
    that was there before it, to end the process as the signal would; the handler installed here
    only notes it, so that a graceful stop ends with exit status 0.
    """
    received: list[int] = []
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in stop_signals}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise UserError(f"imdb serve could not listen at {server.config.host}:{server.config.port} (see above)")
    return signal.Signals(received[0]).name if received else None
