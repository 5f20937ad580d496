"""Any transformers sequence classifier in (:mod:`imdb_cli.heads`): a directory that plain transformers
saved is tested, predicted and trained further by `imdb` with its own head and labels."""

from __future__ import annotations

import json
import random
import re

import pytest

from tests.commands import CONFIGS, Server, imdb, pipeline_scores, predict_records
from tests.conftest import NEGATIVE, POSITIVE, review


@pytest.fixture(scope="module")
def plain(tmp_path_factory, tiny_encoder):
    """A tiny ``BertForSequenceClassification`` with labels ``bad`` and ``good``, saved by transformers
    alone (no ``classifier.json``), and tables labelled with those names."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    workdir = tmp_path_factory.mktemp("plain")
    config = BertConfig.from_pretrained(tiny_encoder, id2label={0: "bad", 1: "good"}, label2id={"bad": 0, "good": 1})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(workdir / "classifier")
    BertTokenizerFast.from_pretrained(tiny_encoder).save_pretrained(workdir / "classifier")
    rng = random.Random(0)
    for name, n in (("train", 16), ("test", 6)):
        kinds = ((NEGATIVE, "bad"), (POSITIVE, "good"))
        rows = [(review(words, rng, 10), label) for _ in range(n) for words, label in kinds]
        (workdir / f"{name}.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    return workdir


def texts(path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def test_a_plain_transformers_classifier_predicts_tests_and_serves_with_its_head_and_labels(plain):
    ours = predict_records(plain, "--model_dir", "classifier", "--data.predict_file", "test.jsonl")
    theirs = pipeline_scores(plain / "classifier", texts(plain / "test.jsonl"))
    assert {r["label"] for r in ours} <= {"bad", "good"} and set(ours[0]["probs"]) == {"bad", "good"}
    for record, scores in zip(ours, theirs, strict=True):
        assert scores == pytest.approx(record["probs"], abs=1e-5)  # its trained head, not a new one
    imdb("test", "--model_dir", "classifier", "--data.test_file", "test.jsonl", cwd=plain)
    report = json.loads((plain / "classifier/test/test_metrics.json").read_text())
    assert report["label_names"] == ["bad", "good"] and report["samples"] == 12
    server = Server(plain, "--model_dir", "classifier", "--trainer.precision", "32-true")
    try:
        status, answer = server.post(texts(plain / "test.jsonl")[:2])
    finally:
        server.stop()
    assert status == 200 and [r["probs"] for r in answer["predictions"]] == [r["probs"] for r in ours[:2]]


def test_a_plain_transformers_classifier_trains_further_from_its_head(plain):
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", "classifier", "--data.train_file",
        "train.jsonl", "--data.batch_size", 4, "--trainer.max_steps", 1, "--model.scheduler.init_args.max_lr",
        1e-9, "--trainer.default_root_dir", "runs", "--trainer.precision", "32-true", cwd=plain,
    )  # fmt: skip
    last = re.search(r"last checkpoint: (\S+)", fit.stdout)[1]
    ours = predict_records(plain, "--ckpt_path", last, "--data.predict_file", "test.jsonl")
    theirs = pipeline_scores(plain / "classifier", texts(plain / "test.jsonl"))
    for record, scores in zip(ours, theirs, strict=True):  # one step at lr 1e-9: the head it started from
        assert scores == pytest.approx(record["probs"], abs=1e-4)


def test_data_with_other_labels_than_the_classifiers_is_one_line(plain):
    rows = [{"text": "great film", "label": "pos"}, {"text": "dull film", "label": "neg"}] * 4
    (plain / "other.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = imdb("fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", "classifier",
                  "--data.train_file", "other.jsonl", cwd=plain, check=False)  # fmt: skip
    assert result.returncode == 1
    message = "imdb: error: train data has label 'neg', not one of the model's: bad, good"
    assert result.stderr.strip().splitlines()[-1] == message
