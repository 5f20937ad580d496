"""`imdb serve` end to end on loopback: a load test against `imdb predict`, every bad request kind,
and the batcher and request parsing on their own."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from imdb_cli.deploy.serve import BadRequest, Batcher, parse_texts
from tests.commands import IMDB, imdb
from tests.conftest import CKPT

ROOT = Path(__file__).parents[2]
SERVE_QUICKSTARTS = {
    "README.md": ROOT / "README.md",
    "getting-started": ROOT / "docs" / "getting-started.md",
    "serving guide": ROOT / "docs" / "guides" / "serving.md",
}
FP32 = ("--trainer.precision", "32-true")
WORDS = "great moving film dull plot scene awful brilliant story music and the boring loved".split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: bytes | None = None, timeout: float = 60) -> tuple[int, dict]:
    """The status and JSON answer of a GET (no body) or POST."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Server:
    """`imdb serve ARGS` in a subprocess, on a free loopback port, until stopped."""

    def __init__(self, cwd: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
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

    def post(self, texts) -> tuple[int, dict]:
        return call(f"{self.url}/predict", json.dumps({"texts": texts}).encode())

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.decode()


def texts_of_mixed_lengths(count: int, seed: int) -> list[str]:
    """Texts from 1 to 60 words: shorter and longer than the fixture's 24 tokens, so that batches pad and truncate."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))) + f" {i}" for i in range(count)]


@pytest.fixture(scope="module")
def reference(fitted_run) -> dict[str, dict]:
    """`imdb predict` of the pool of texts the load test sends, by text."""
    pool = texts_of_mixed_lengths(120, seed=7)
    (fitted_run / "pool.txt").write_text("\n".join(pool) + "\n")
    out = imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "pool.txt", *FP32, cwd=fitted_run).stdout
    return {text: json.loads(line) for text, line in zip(pool, out.splitlines(), strict=True)}


@pytest.fixture(scope="module")
def server(fitted_run):
    running = Server(fitted_run, "--ckpt_path", CKPT, "--max_batch_size", "16", "--max_texts", "8",
                     "--max_request_bytes", "2000", *FP32)  # fmt: skip
    yield running
    running.stop()


def same_records(answer: list[dict], texts: list[str], reference: dict[str, dict]) -> bool:
    expected = [reference[text] for text in texts]
    if [r["line"] for r in answer] != list(range(1, len(texts) + 1)):
        return False
    if [r["label"] for r in answer] != [r["label"] for r in expected]:
        return False
    return all(r["probs"] == pytest.approx(e["probs"], abs=1e-5) for r, e in zip(answer, expected, strict=True))


def test_concurrent_clients_get_what_imdb_predict_writes_batched_together(server, reference):
    """8 clients, 50 requests each of 1 to 4 texts: every answer right and in order, no error."""
    pool = list(reference)
    failures: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            texts = rng.sample(pool, rng.randint(1, 4))
            status, answer = server.post(texts)
            if status != 200 or not same_records(answer["predictions"], texts, reference):
                failures.append(f"{status} {answer}"[:300])

    _, before = call(f"{server.url}/health")
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "the load test did not finish within 240 s"
    assert time.monotonic() - start < 240
    assert not failures, failures[:3]
    _, after = call(f"{server.url}/health")
    requests, batches = 8 * 50, after["batches_run"] - before["batches_run"]
    assert batches < requests, f"{batches} batches for {requests} concurrent requests: none were batched together"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"texts": ["fine", ', 400, "the body is not JSON"),
        (b'{"text": ["fine"]}', 422, 'the body needs "texts": a list of strings'),
        (b'["fine"]', 422, 'the body needs "texts": a list of strings'),
        (b'{"texts": "fine"}', 422, '"texts" must be a list of strings'),
        (b'{"texts": []}', 422, '"texts" is empty: nothing to predict'),
        (b'{"texts": ["fine", 3]}', 422, "texts[1] is not a string: a list of strings"),
        (b'{"texts": ["fine", "  "]}', 422, "texts[1] is empty"),
        (b'{"texts": ["\\ud800 x"]}', 422, "texts[0] is not valid Unicode: surrogates not allowed at character 0"),
        (json.dumps({"texts": ["fine"] * 9}).encode(), 413, "9 texts in one request: at most 8 (--max_texts)"),
        (json.dumps({"texts": ["fine " * 500]}).encode(), 413, "bytes: at most 2000 (--max_request_bytes)"),
    ],
)
def test_a_bad_request_gets_a_4xx_and_one_line_and_the_server_goes_on(server, reference, body, status, message):
    got, answer = call(f"{server.url}/predict", body)
    assert got == status
    assert message in answer["error"] and "\n" not in answer["error"]
    text = next(iter(reference))
    assert server.post([text]) == (200, {"predictions": [{**reference[text], "line": 1}]})


def test_health_says_what_is_served(server):
    status, health = call(f"{server.url}/health")
    assert status == 200
    assert health["status"] == "ok" and health["runtime"] == "pytorch" and health["task"] == "classification"
    assert health["labels"] == ["negative", "positive"] and health["model"] == CKPT and health["max_texts"] == 8


def test_a_wrong_method_or_route_answers_in_the_same_error_form(server):
    assert call(f"{server.url}/predict") == (405, {"error": "GET /predict: Method Not Allowed"})
    assert call(f"{server.url}/nowhere", b"{}") == (404, {"error": "POST /nowhere: Not Found"})


def test_an_onnx_export_serves_what_it_predicts(fitted_run):
    imdb("export", "--ckpt_path", CKPT, "--output_dir", "served-onnx", "--format", "onnx", cwd=fitted_run)
    texts = texts_of_mixed_lengths(6, seed=3)
    (fitted_run / "six.txt").write_text("\n".join(texts) + "\n")
    out = imdb("predict", "--model_dir", "served-onnx", "--data.predict_file", "six.txt", cwd=fitted_run).stdout
    expected = [json.loads(line) for line in out.splitlines()]
    running = Server(fitted_run, "--model_dir", "served-onnx")
    try:
        assert call(f"{running.url}/health")[1]["runtime"] == "onnxruntime"
        status, answer = running.post(texts)
    finally:
        log = running.stop()
    assert status == 200
    assert [r["label"] for r in answer["predictions"]] == [r["label"] for r in expected]
    for ours, theirs in zip(answer["predictions"], expected, strict=True):
        assert ours["probs"] == pytest.approx(theirs["probs"], abs=1e-5)
    assert "serving served-onnx at http://127.0.0.1:" in log


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_documented_curl_command_works_as_written(fitted_run):
    """The serve commands of the README and the docs, with the checkpoint of the fixture: their curl line
    (one and the same on every page) is run unchanged but for the port."""
    curls = set()
    for page in SERVE_QUICKSTARTS.values():
        lines = page.read_text().splitlines()
        serve_line = next(line for line in lines if line.startswith("imdb serve --model_dir clf-onnx"))
        assert "--port 8000" in serve_line, page
        curls.add(next(line for line in lines if line.startswith("curl -s localhost:8000/predict")))
    assert len(curls) == 1, curls
    curl = curls.pop()
    port = free_port()
    running = Server(fitted_run, "--ckpt_path", CKPT, port=port)
    try:
        command = curl.replace("localhost:8000", f"localhost:{port}")
        answer = json.loads(subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout)
    finally:
        running.stop()
    assert [r["line"] for r in answer["predictions"]] == [1, 2]
    assert all(r["label"] in ("negative", "positive") for r in answer["predictions"])


def test_serve_without_a_trained_classifier_is_one_line(fitted_run, tiny_encoder):
    result = imdb("serve", "--model.encoder", tiny_encoder, "--port", str(free_port()), cwd=fitted_run, check=False)
    assert result.returncode == 1
    message = "imdb serve needs a trained classifier: --ckpt_path CKPT, or --model_dir DIR of imdb export"
    assert result.stderr.strip().splitlines()[-1] == f"imdb: error: {message}"


def test_the_batcher_batches_concurrent_texts_keeps_their_order_and_survives_a_failure():
    sizes: list[int] = []

    def run(texts: list) -> list:
        sizes.append(len(texts))
        if "boom" in texts:
            raise RuntimeError("boom")
        return [text.upper() for text in texts]

    async def scenario(max_batch_size: int):
        batcher = Batcher(run, max_batch_size, max_wait_ms=20)
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
        batcher = Batcher(run, max_batch_size=16, max_wait_ms=50)
        worker = asyncio.create_task(batcher.work())
        requests = [["a", "b"], ["boom"], ["c"], ["d", "boom", "e"]]
        answers = await asyncio.gather(*(batcher.submit(texts) for texts in requests), return_exceptions=True)
        worker.cancel()
        return answers

    good, bad, alone, mixed = asyncio.run(scenario())
    assert good == ["A", "B"] and alone == ["C"]  # they shared a batch with "boom"
    assert isinstance(bad, RuntimeError) and isinstance(mixed, RuntimeError)


def test_a_lone_surrogate_is_refused_before_it_joins_a_batch():
    with pytest.raises(BadRequest) as bad:
        parse_texts(b'{"texts": ["fine", "\\ud800 x"]}', pairs=False, max_texts=8)
    assert bad.value.status == 422
    assert str(bad.value) == "texts[1] is not valid Unicode: surrogates not allowed at character 0"


def test_pairs_are_parsed_as_pairs():
    assert parse_texts(b'{"texts": [["a", "b"]]}', pairs=True, max_texts=4) == [("a", "b")]
    with pytest.raises(BadRequest, match=re.escape("texts[0] is not a pair of strings")):
        parse_texts(b'{"texts": ["a"]}', pairs=True, max_texts=4)
