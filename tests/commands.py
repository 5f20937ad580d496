"""Running the `imdb` command as a user does: a subprocess, offline, output captured."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CONFIGS = Path(__file__).parent.parent / "configs"
IMDB = str(Path(sys.executable).with_name("imdb"))


SMALL_DATA_RULES = {"--trainer.min_optimizer_steps": "0", "--data.min_val_texts": "0"}
"""The shipped configs' rules for small sets, which the tests' tiny fixtures would meet at every fit:
hundreds of steps over a few dozen texts, and no validation."""


def argv(*args) -> list[str]:
    """``imdb ARGS`` as the tests run it: for ``fit``, the small-data rules off unless given."""
    args = [str(arg) for arg in args]
    if args and args[0] == "fit":
        args += [item for flag, value in SMALL_DATA_RULES.items() if flag not in args for item in (flag, value)]
    return args


def imdb(*args: str, cwd: Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [IMDB, *argv(*args)], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def fit(workdir: Path, encoder: Path, archive: Path, *extra, check: bool = True) -> subprocess.CompletedProcess:
    """`imdb fit` with the shipped MiniLM config on a tiny encoder and aclImdb: batches of 4 texts of
    at most 32 tokens, into ``runs/lightning_logs/run``."""
    return imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", encoder, "--data.source", archive,
        "--data.max_length", 32, "--data.batch_size", 4, "--trainer.default_root_dir", "runs",
        "--trainer.logger.init_args.version", "run", *extra,
        cwd=workdir, check=check,
    )  # fmt: skip


def pipeline_scores(model_dir: Path, texts: list[str], **kwargs) -> list[dict[str, float]]:
    """Every label's score for each text from ``transformers.pipeline("text-classification")`` alone, as
    a user of the export runs it (``top_k=None``): what ``config.json``'s ``problem_type`` makes of the logits."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(model_dir), top_k=None, device="cpu", **kwargs)
    return [{entry["label"]: entry["score"] for entry in row} for row in classify(texts)]


def predict_records(workdir: Path, *args, fp32: bool = True) -> list[dict]:
    """`imdb predict ARGS` as JSON records, in full precision unless ``fp32`` is false."""
    precision = ("--trainer.precision", "32-true") if fp32 else ()
    result = imdb("predict", *args, *precision, cwd=workdir)
    return [json.loads(line) for line in result.stdout.splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: bytes | None = None, timeout: float = 60, key: str | None = None) -> tuple[int, dict]:
    """The status and JSON answer of a GET (no body) or POST."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        answer = json.loads(err.read())
        if err.headers.get("Retry-After"):
            answer["retry_after"] = err.headers["Retry-After"]
        return err.code, answer


class Server:
    """`imdb serve ARGS` in a subprocess, on a free loopback port, until stopped."""

    def __init__(self, cwd: Path, *args: str, port: int | None = None, env: dict | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        command = [IMDB, "serve", *args, "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.process.stdout.read().decode()[-3000:])
            try:
                if call(f"{self.url}/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("imdb serve did not answer /health within 120 s")

    def post(self, texts, key: str | None = None) -> tuple[int, dict]:
        return call(f"{self.url}/predict", json.dumps({"texts": texts}).encode(), key=key)

    def stop(self) -> str:
        """SIGTERM, as Kubernetes stops a pod: the server ends gracefully, with exit status 0."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, out.decode()[-3000:]
        return out.decode()
