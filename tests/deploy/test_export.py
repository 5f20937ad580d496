"""`imdb export` end to end: fit, test and export a tiny classifier, then predict from the export."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import imdb, pipeline_scores, predict_records
from tests.conftest import CKPT

EXPORT_GUIDE = Path(__file__).parents[2] / "docs" / "guides" / "export.md"


@pytest.fixture(scope="module")
def exported(fitted_run):
    """The fitted and tested classifier exported, and reviews to predict."""
    export = imdb("export", "--ckpt_path", CKPT, "--output_dir", "exported", cwd=fitted_run)
    assert f"exported {CKPT} to exported" in export.stdout
    return fitted_run


def test_the_export_is_self_contained_and_a_standard_sequence_classifier(exported):
    files = {p.name for p in (exported / "exported").iterdir()}
    assert {"config.json", "model.safetensors", "classifier.json", "README.md"} <= files
    assert "tokenizer.json" in files or "vocab.txt" in files
    assert not files & {"head.safetensors", "modeling_imdb_cli.py"}  # the head is in model.safetensors
    config = json.loads((exported / "exported" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]  # configs/minilm.yaml's head: auto
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert config["problem_type"] == "single_label_classification"
    assert "auto_map" not in config
    meta = json.loads((exported / "exported" / "classifier.json").read_text())
    assert (meta["format"], meta["head"], meta["task"]) == (2, "auto", "classification")
    assert (meta["max_length"], meta["truncation"], meta["head_tokens"]) == (24, "head_tail", 128)
    assert not meta.keys() & {"label_names", "head_hidden", "dropout"}  # config.json holds them
    assert not list(exported.glob(".exported.*")), "temporary directory left behind"


def test_transformers_loads_every_weight_of_the_export(exported):
    from transformers import AutoModelForSequenceClassification

    model, info = AutoModelForSequenceClassification.from_pretrained(exported / "exported", output_loading_info=True)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert not any(info.values()), info  # no weight newly initialised, unused or of another shape


def test_predictions_from_the_export_equal_those_from_the_checkpoint(exported):
    """In full precision: in bf16 the export's default batch size (16, the checkpoint's is 4) pads
    batches differently, which moved one probability of 30 by 1.2e-4 for one random tiny encoder."""
    fp32 = ("--trainer.precision", "32-true")
    imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "reviews.txt", "--output", "ckpt.jsonl", *fp32,
         cwd=exported)  # fmt: skip
    imdb("predict", "--model_dir", "exported", "--data.predict_file", "reviews.txt", "--output", "dir.jsonl", *fp32,
         cwd=exported)  # fmt: skip
    from_ckpt, from_dir = ([json.loads(line) for line in (exported / name).read_text().splitlines()]
                           for name in ("ckpt.jsonl", "dir.jsonl"))  # fmt: skip
    assert len(from_ckpt) == 30
    assert [(r["line"], r["label"]) for r in from_dir] == [(r["line"], r["label"]) for r in from_ckpt]
    for ours, theirs in zip(from_dir, from_ckpt, strict=True):
        assert ours["probs"] == pytest.approx(theirs["probs"], abs=2e-6)


def test_the_model_card_holds_the_test_metrics_and_parses_back(exported):
    from huggingface_hub import ModelCard

    text = (exported / "exported" / "README.md").read_text()
    report = json.loads((exported / "runs/lightning_logs/version_0/test/best/test_metrics.json").read_text())
    assert f"| test_acc | {report['metrics']['test_acc']:.4f} |" in text
    assert f"On {report['samples']} test texts" in text
    assert "imdb predict --model_dir exported" in text
    assert "longer texts keep their first 22 tokens." in text  # 24 tokens with [CLS] and [SEP]: head_tokens 128 is moot
    card = ModelCard.load(exported / "exported" / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name) == ("text-classification", "transformers")
    assert card.data.base_model is None  # a local encoder has no Hub id to name
    assert card.data.datasets == ["stanfordnlp/imdb"]
    results = {r.metric_name: r for r in card.data.eval_results}
    assert results["test_acc"].metric_type == "accuracy"
    assert results["test_acc"].metric_value == round(report["metrics"]["test_acc"], 4)
    assert results["test_acc"].dataset_type == "stanfordnlp/imdb" and results["test_acc"].dataset_split == "test"
    assert "test_loss" not in results


def test_the_export_guide_snippet_runs_and_pipeline_agrees_with_imdb_predict(exported):
    """The export guide's code runs as written; ``pipeline`` gives ``imdb predict``'s labels and
    probabilities on texts within max_length, both in full precision."""
    from imdb_cli.deploy.export import PLAIN_USE

    snippet = re.search(r"```python\n(.*?)```", EXPORT_GUIDE.read_text(), re.S)[1]
    assert snippet == PLAIN_USE
    assert PLAIN_USE in (exported / "exported" / "README.md").read_text()
    result = subprocess.run([sys.executable, "-c", snippet], cwd=exported, capture_output=True, text=True, check=True)
    printed = ast.literal_eval(result.stdout.strip())
    assert [sorted(e["label"] for e in row) for row in printed] == [["negative", "positive"]] * 2
    texts = ["great moving film", "dull plot and dull scene", "great great scene", "dull film"]
    (exported / "short.txt").write_text("\n".join(texts) + "\n")
    ours = predict_records(exported, "--model_dir", "exported", "--data.predict_file", "short.txt")
    theirs = pipeline_scores(exported / "exported", texts)
    assert [max(t, key=t.get) for t in theirs] == [r["label"] for r in ours]
    for record, scores in zip(ours, theirs, strict=True):
        assert scores == pytest.approx(record["probs"], abs=1e-5)


def test_exporting_again_replaces_the_export_but_nothing_else(exported):
    (exported / "exported" / "stale.txt").write_text("from an older export")
    imdb("export", "--ckpt_path", CKPT, "--output_dir", "exported", cwd=exported)
    assert not (exported / "exported" / "stale.txt").exists()
    (exported / "mine").mkdir()
    (exported / "mine" / "notes.txt").write_text("keep me")
    result = imdb("export", "--ckpt_path", CKPT, "--output_dir", "mine", cwd=exported, check=False)
    assert result.returncode == 1
    assert "imdb: error: --output_dir mine exists and is not an earlier export" in result.stderr
    assert (exported / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model_dir", "runs"],
            "runs is not a directory written by imdb export, nor a transformers sequence classifier: "
            "it has no classifier.json, and no config.json that names a *ForSequenceClassification",
        ),
        (["--model_dir", "exported", "--ckpt_path", CKPT], "pass --ckpt_path or --model_dir, not both"),
    ],
)
def test_model_dir_mistakes_give_one_line(exported, args, message):
    result = imdb("predict", *args, "--data.predict_file", "reviews.txt", cwd=exported, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"imdb: error: {message}"


@pytest.fixture(scope="module")
def earlier_export(tmp_path_factory, tiny_encoder):
    """An export as imdb-cli wrote them before the head moved into ``model.safetensors`` (classifier.json
    format 1): the bare encoder, ``head.safetensors``, label names and head width in classifier.json;
    and the probabilities its MLP gives four short texts, computed here."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from imdb_cli.model import SentimentClassifier

    workdir = tmp_path_factory.mktemp("earlier")
    directory = workdir / "exported"
    torch.manual_seed(0)
    model = SentimentClassifier(encoder=str(tiny_encoder), head="mlp", head_hidden=16)
    model.build(pretrained=True)
    model.eval()
    model.encoder.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, directory / "head.safetensors")
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    tokenizer.save_pretrained(directory)
    meta = {
        "format": 1, "model_format": "safetensors", "task": "classification",
        "label_names": ["negative", "positive"], "head_hidden": 16, "dropout": 0.2, "max_length": 24,
        "truncation": "head_tail", "head_tokens": 128, "text_column": "text", "base_encoder": str(tiny_encoder),
        "checkpoint": "runs/best.ckpt", "epoch": 0, "global_step": 10, "imdb_cli_version": "0.9.0",
    }  # fmt: skip
    (directory / "classifier.json").write_text(json.dumps(meta))
    texts = ["great moving film", "dull plot and dull scene", "great great scene", "dull film"]
    (workdir / "short.txt").write_text("\n".join(texts) + "\n")
    with torch.no_grad():
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        probs = model.head(model.encoder(**tokens).last_hidden_state[:, 0]).softmax(-1)
    return workdir, probs.tolist()


def test_an_earlier_export_still_predicts_tests_serves_and_fits(earlier_export, imdb_archive):
    from tests.commands import Server

    workdir, expected = earlier_export
    ours = predict_records(workdir, "--model_dir", "exported", "--data.predict_file", "short.txt")
    for record, probs in zip(ours, expected, strict=True):
        assert list(record["probs"].values()) == pytest.approx(probs, abs=1e-5)  # its trained head
    imdb("test", "--model_dir", "exported", "--data.source", imdb_archive, "--trainer.logger", "false", cwd=workdir)
    assert (workdir / "exported/test/test_metrics.json").is_file()
    server = Server(workdir, "--model_dir", "exported", "--trainer.precision", "32-true")
    try:
        status, answer = server.post(["great moving film"])
    finally:
        server.stop()
    assert status == 200 and answer["predictions"][0]["probs"] == pytest.approx(ours[0]["probs"], abs=1e-5)
    imdb("fit", "--model_dir", "exported", "--data.source", imdb_archive, "--trainer.max_steps", 2,
         "--trainer.default_root_dir", "runs", cwd=workdir)  # fmt: skip
    hparams = (workdir / "runs/lightning_logs/version_0/hparams.yaml").read_text()
    assert "head: mlp" in hparams and "head_hidden: 16" in hparams
