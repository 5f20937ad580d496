"""`imdb serve` end to end on loopback, as its users' clients call it: a load test with bad texts mixed
in against `imdb predict`, Hugging Face's `InferenceClient`, every bad request kind, the API key and an
overload, a graceful stop with requests in flight, and the documented curl line."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.commands import Server, call, free_port, imdb
from tests.conftest import CKPT

ROOT = Path(__file__).parents[3]
SERVE_QUICKSTARTS = {
    "README.md": ROOT / "README.md",
    "getting-started": ROOT / "docs" / "getting-started.md",
    "serving guide": ROOT / "docs" / "guides" / "serving.md",
}
FP32 = ("--trainer.precision", "32-true")
WORDS = "great moving film dull plot scene awful brilliant story music and the boring loved".split()


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


def test_concurrent_clients_with_bad_texts_mixed_in_get_what_imdb_predict_writes(server, reference):
    """20 clients, 20 requests each of 1 to 4 texts, one request in ten holding a text no tokenizer
    takes (a lone surrogate, valid JSON): every good request answered right and in order, every bad
    one 422, and texts of concurrent requests batched together."""
    pool = list(reference)
    failures: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(20):
            texts = rng.sample(pool, rng.randint(1, 4))
            if n % 10 == seed % 10:
                texts.insert(rng.randint(0, len(texts)), "\ud800 a bad text")
                status, answer = server.post(texts)
                if status != 422 or "not valid Unicode" not in answer["error"]:
                    failures.append(f"bad: {status} {answer}"[:300])
                continue
            status, answer = server.post(texts)
            if status != 200 or not same_records(answer["predictions"], texts, reference):
                failures.append(f"good: {status} {answer}"[:300])

    _, before = call(f"{server.url}/health")
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "the load test did not finish within 240 s"
    assert not failures, failures[:3]
    _, after = call(f"{server.url}/health")
    requests, batches = 20 * 18, after["batches_run"] - before["batches_run"]
    assert batches < requests, f"{batches} batches for {requests} concurrent requests: none were batched together"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"texts": ["fine", ', 400, "the body is not JSON: Expecting value at character 19"),
        (b'{"text": ["fine"]}', 422, "texts: Field required"),
        (b'{"texts": "fine"}', 422, "texts: Input should be a valid list"),
        (b'{"texts": ["fine", 3]}', 422, "texts[1]: Input should be a valid string"),
        (b'{"texts": ["fine", "  "]}', 422, "texts[1]: empty or only spaces"),
        (b'{"texts": ["\\ud800 x"]}', 422, "texts[0]: not valid Unicode: surrogates not allowed at character 0"),
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


def test_hugging_face_inference_client_gets_what_imdb_predict_gives(server, reference):
    """``InferenceClient(model=URL).text_classification`` of ``huggingface_hub`` itself: the labels
    ranked by score, the top one ``imdb predict``'s label and score."""
    from huggingface_hub import InferenceClient

    hf = InferenceClient(model=server.url)
    for text in list(reference)[:20]:
        expected = reference[text]
        ranked = hf.text_classification(text)
        assert [item.label for item in ranked] == sorted(expected["probs"], key=expected["probs"].get, reverse=True)
        assert ranked[0].label == expected["label"] and ranked[0].score == pytest.approx(expected["score"], abs=1e-5)
    top = hf.text_classification(text, top_k=1)
    assert [item.label for item in top] == [expected["label"]]
    with urllib.request.urlopen(f"{server.url}/metrics") as response:
        metrics = response.read().decode()
    assert 'imdb_serve_requests_total{route="/",status="200"} 21.0' in metrics


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


def test_with_an_api_key_and_a_small_queue_an_overload_gets_503_and_nothing_is_lost(fitted_run, reference):
    """The key comes from the environment; a request without it gets 401, with it 200; ``/health``
    stays open. 16 clients sending 8 texts each to a queue of 8: some get 503 with Retry-After, every
    other answer is complete and right."""
    from huggingface_hub import InferenceClient

    key = "a-key-for-this-test-only"
    running = Server(fitted_run, "--ckpt_path", CKPT, "--api_key_env", "IMDB_TEST_KEY", "--max_queue", "8",
                     "--max_texts", "8", "--max_batch_size", "2", "--max_wait_ms", "0", *FP32,
                     env={"IMDB_TEST_KEY": key})  # fmt: skip
    pool = list(reference)
    outcomes: list[int] = []
    failures: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(4):
            texts = rng.sample(pool, 8)
            status, answer = running.post(texts, key=key)
            outcomes.append(status)
            if status == 503:
                if answer.get("retry_after") != "1" or "(--max_queue)" not in answer["error"]:
                    failures.append(str(answer))
            elif status != 200 or not same_records(answer["predictions"], texts, reference):
                failures.append(f"{status} {answer}"[:300])

    try:
        assert running.post(pool[:1])[0] == 401
        assert running.post(pool[:1], key="not-the-key")[0] == 401
        assert call(f"{running.url}/health")[0] == 200
        text = pool[0]
        ranked = InferenceClient(model=running.url, token=key).text_classification(text)
        assert ranked[0].label == reference[text]["label"]
        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
    finally:
        log = running.stop()
    assert not failures, failures[:3]
    assert len(outcomes) == 64 and set(outcomes) == {200, 503}, sorted(outcomes)
    assert key not in log


def test_listening_beyond_loopback_without_a_key_is_refused(fitted_run):
    result = imdb("serve", "--ckpt_path", CKPT, "--host", "0.0.0.0", "--port", str(free_port()), cwd=fitted_run,
                  check=False)  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("imdb: error: --host 0.0.0.0 takes connections from other machines: give --api_key_env NAME")
    )


def test_sigterm_with_requests_in_flight_answers_them_all_and_exits_0(fitted_run, reference):
    """What Kubernetes does on every rollout: 8 requests are waiting for a batch (which waits 3 s for
    more texts) when SIGTERM comes; each is answered 200 and right, and the process ends with 0."""
    running = Server(fitted_run, "--ckpt_path", CKPT, "--max_batch_size", "64", "--max_wait_ms", "3000", *FP32)
    pool = list(reference)
    answers: dict[int, tuple[int, dict]] = {}
    threads = [threading.Thread(target=lambda i=i: answers.update({i: running.post(pool[2 * i : 2 * i + 2])}))
               for i in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{running.url}/metrics") as response:
            metrics = response.read().decode()
        if 'imdb_serve_requests_in_progress{route="/predict"} 8.0' in metrics:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("8 requests were not in flight within 30 s")
    running.process.send_signal(signal.SIGTERM)
    out, _ = running.process.communicate(timeout=60)
    for thread in threads:
        thread.join(timeout=30)
    assert running.process.returncode == 0, out.decode()[-3000:]
    assert "imdb: stopped by SIGTERM: every request received was answered" in out.decode()
    for i in range(8):
        status, answer = answers[i]
        assert status == 200 and same_records(answer["predictions"], pool[2 * i : 2 * i + 2], reference)
