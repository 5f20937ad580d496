"""The application on its own, in-process (FastAPI's TestClient), with a stand-in model: both
protocols' shapes for every task kind, one-line errors, the schema, metrics, the API key, 503 and 504."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from fastapi.testclient import TestClient

from imdb_cli.deploy.serving.app import create_app
from imdb_cli.tasks import build_task

LABELS = {
    "classification": ["negative", "positive"],
    "multi_label": ["action", "comedy", "drama"],
    "regression": ["rating"],
}
KEY = "s3cret-key"


class StandIn:
    """A model whose logits follow from each text's length; ``gate`` holds every batch until set."""

    def __init__(self, task: str, gate: threading.Event | None = None) -> None:
        self.task = build_task(task, LABELS[task])
        self.gate = gate

    def __call__(self, texts: list) -> list:
        if self.gate is not None:
            self.gate.wait(10)
        logits = torch.tensor([[float((len(str(t)) + i) % 4) - 1.5 for i in range(len(self.task.label_names))]
                               for t in texts])  # fmt: skip
        return list(zip(logits.tolist(), self.task.scores(logits).tolist(), strict=True))


def client(task: str = "classification", pairs: bool = False, gate=None, **limits) -> TestClient:
    settings = {"max_batch_size": 4, "max_wait_ms": 1, "max_texts": 8, "max_queue": 16, "request_timeout": 10,
                "max_request_bytes": 2000, **limits}  # fmt: skip
    info = {"model": "stand-in", "task": task, "pairs": pairs, "labels": LABELS[task]}
    return TestClient(create_app(StandIn(task, gate), info, **settings), raise_server_exceptions=False)


@pytest.mark.parametrize("task", ["classification", "multi_label", "regression"])
def test_both_protocols_give_the_same_scores(task):
    texts = ["A moving film.", "Dull and far too long.", "ok"]
    with client(task) as http:
        records = http.post("/predict", json={"texts": texts}).json()["predictions"]
        inference = http.post("/", json={"inputs": texts}).json()
        single = http.post("/", json={"inputs": texts[0]}).json()
    assert single == inference[:1]
    for record, labels in zip(records, inference, strict=True):
        scores = [item["score"] for item in labels]
        assert scores == sorted(scores, reverse=True)
        if task == "regression":
            assert labels == [{"label": "rating", "score": pytest.approx(record["value"], abs=1e-6)}]
        else:
            assert {item["label"]: item["score"] for item in labels} == pytest.approx(record["probs"], abs=1e-6)
    if task == "classification":
        assert records[0]["label"] == inference[0][0]["label"]


def test_inference_parameters_top_k_and_function_to_apply():
    with client("multi_label") as http:
        top = http.post("/", json={"inputs": "A moving film.", "parameters": {"top_k": 1}}).json()
        raw = http.post("/", json={"inputs": "A moving film.", "parameters": {"function_to_apply": "none"}}).json()
        soft = http.post("/", json={"inputs": "A moving film.", "parameters": {"function_to_apply": "softmax"}}).json()
    assert len(top[0]) == 1 and top[0][0]["label"] == raw[0][0]["label"]
    assert {item["score"] for item in raw[0]} == {0.5, 1.5, -1.5}  # the stand-in's logits
    assert sum(item["score"] for item in soft[0]) == pytest.approx(1.0)


def test_a_pair_model_takes_pairs_in_both_protocols():
    pair = {"text": "A man plays a guitar.", "text_pair": "A man plays."}
    with client(pairs=True) as http:
        record = http.post("/predict", json={"texts": [[pair["text"], pair["text_pair"]]]}).json()["predictions"][0]
        labels = http.post("/", json={"inputs": pair}).json()[0]
        bad = http.post("/predict", json={"texts": ["no pair"]})
    assert record["label"] == labels[0]["label"] and record["score"] == pytest.approx(labels[0]["score"], abs=1e-6)
    assert bad.status_code == 422 and bad.json()["error"].startswith("texts[0]: ")


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("/predict", b'{"texts": ["fine", ', 400, "the body is not JSON: Expecting value at character 19"),
        ("/predict", b'["fine"]', 422, "the body: Input should be a valid dictionary"),
        ("/predict", b'{"text": ["fine"]}', 422, "texts: Field required"),
        ("/predict", b'{"texts": []}', 422, "texts: List should have at least 1 item"),
        ("/predict", b'{"texts": ["fine", "\\ud800 x"]}', 422,
         "texts[1]: not valid Unicode: surrogates not allowed at character 0"),
        ("/", b'{"inputs": ""}', 422, "inputs[0]: empty or only spaces"),
        ("/", b'{"inputs": "fine", "parameters": {"function_to_apply": "tanh"}}', 422,
         "parameters.function_to_apply: Input should be 'softmax', 'sigmoid' or 'none'"),
        ("/", json.dumps({"inputs": ["fine"] * 9}).encode(), 413, "9 texts in one request: at most 8 (--max_texts)"),
        ("/", json.dumps({"inputs": "fine " * 500}).encode(), 413, "bytes: at most 2000 (--max_request_bytes)"),
    ],
)  # fmt: skip
def test_a_bad_request_is_one_line_in_either_protocol(route, body, status, message):
    with client() as http:
        answer = http.post(route, content=body)
    assert answer.status_code == status
    assert message in answer.json()["error"] and "\n" not in answer.json()["error"]


def test_a_body_is_json_whatever_its_content_type_says():
    """``curl -d`` sends application/x-www-form-urlencoded."""
    with client() as http:
        answer = http.post("/predict", content=b'{"texts": ["fine"]}',
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["predictions"][0]["line"] == 1


def test_the_schema_describes_the_bodies_of_both_protocols():
    with client() as http:
        schema = http.get("/openapi.json").json()
        assert http.get("/docs").status_code == 200
    for route, body in (("/predict", "TextsRequest"), ("/", "InferenceRequest")):
        post = schema["paths"][route]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{body}"}
        assert {"200", "413", "422", "503", "504"} <= set(post["responses"])
    components = schema["components"]["schemas"]
    assert components["TextsRequest"]["required"] == ["texts"]
    assert set(components["InferenceRequest"]["properties"]) == {"inputs", "parameters"}
    assert set(components["ClassRecord"]["properties"]) == {"line", "label", "score", "probs"}


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = f"{name}{{{want}}} " if want else f"{name} "
    line = next((line for line in text.splitlines() if line.startswith(prefix)), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_metrics_count_requests_and_texts_by_route_and_status():
    with client() as http:
        http.post("/predict", json={"texts": ["a", "b", "c"]})
        http.post("/", json={"inputs": "a"})
        http.post("/predict", json={"texts": ["a", " "]})
        http.get("/nowhere")
        scraped = http.get("/metrics")
    text = scraped.text
    assert scraped.headers["content-type"].startswith("text/plain")
    assert metric(text, "imdb_serve_requests_total", route="/predict", status="200") == 1
    assert metric(text, "imdb_serve_requests_total", route="/predict", status="422") == 1
    assert metric(text, "imdb_serve_requests_total", route="/", status="200") == 1
    assert metric(text, "imdb_serve_requests_total", route="other", status="404") == 1
    assert metric(text, "imdb_serve_texts_total", route="/predict", status="200") == 3
    assert metric(text, "imdb_serve_batch_size_sum") == 4
    assert metric(text, "imdb_serve_request_duration_seconds_count", route="/predict") == 2
    assert "imdb_serve_queue_texts 0.0" in text and "process_cpu_seconds_total" in text


def test_with_an_api_key_every_route_but_health_needs_it():
    with client(api_key=KEY) as http:
        assert http.get("/health").status_code == 200
        missing = http.post("/predict", json={"texts": ["fine"]})
        wrong = http.post("/", json={"inputs": "fine"}, headers={"Authorization": "Bearer s3cret-kez"})
        right = http.post("/", json={"inputs": "fine"}, headers={"Authorization": f"Bearer {KEY}"})
        assert http.get("/metrics").status_code == 401 and http.get("/openapi.json").status_code == 401
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"].startswith("no API key: send the header Authorization: Bearer")
    assert wrong.status_code == 401 and wrong.json()["error"].startswith("a wrong API key")
    assert right.status_code == 200 and right.json()[0][0]["label"] in LABELS["classification"]


def test_an_overloaded_queue_answers_503_with_retry_after_and_loses_nothing():
    gate = threading.Event()
    with client(gate=gate, max_batch_size=2, max_queue=8) as http:
        answers: dict[int, object] = {}

        def send(i: int) -> None:
            answers[i] = http.post("/predict", json={"texts": [f"text {i} {j}" for j in range(4)]})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
        for _ in range(200):  # until the refused ones are answered: the others wait at the gate
            if sum(a.status_code == 503 for a in answers.values()) >= 3:
                break
            threading.Event().wait(0.02)
        gate.set()
        for thread in threads:
            thread.join(20)
    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [200, 200, 503, 503, 503]  # two requests fit (8 texts waiting, or 2 running and 6); no third
    for answer in answers.values():
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1" and "(--max_queue)" in answer.json()["error"]
        else:
            assert [r["line"] for r in answer.json()["predictions"]] == [1, 2, 3, 4]


def test_a_request_past_its_timeout_gets_504_and_the_server_goes_on():
    gate = threading.Event()
    with client(gate=gate, request_timeout=0.2) as http:
        late = http.post("/predict", json={"texts": ["slow"]})
        gate.set()
        after = http.post("/predict", json={"texts": ["fast"]})
    assert late.status_code == 504 and late.json() == {"error": "no answer within 0.2 s (--request_timeout)"}
    assert after.status_code == 200
