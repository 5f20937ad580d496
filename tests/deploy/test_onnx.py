"""`imdb export --format onnx [--quantize int8]`, then predict and test from the ONNX graph, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.commands import imdb
from tests.conftest import CKPT

FP32 = ("--trainer.precision", "32-true")


@pytest.fixture(scope="module")
def onnx_run(fitted_run):
    """The fitted classifier exported as an ONNX graph in full precision (``onnx``) and int8 (``onnx-int8``)."""
    for name, extra in (("onnx", ()), ("onnx-int8", ("--quantize", "int8"))):
        result = imdb("export", "--ckpt_path", CKPT, "--output_dir", name, "--format", "onnx", *extra, cwd=fitted_run)
        assert f"exported {CKPT} to {name}" in result.stdout
    imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "reviews.txt", "--output", "ckpt.jsonl",
         "--embeddings", *FP32, cwd=fitted_run)  # fmt: skip
    return fitted_run


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_onnx_export_holds_one_graph_the_tokenizer_and_its_format(onnx_run):
    files = {p.name for p in (onnx_run / "onnx").iterdir()}
    assert {"model.onnx", "config.json", "classifier.json", "README.md"} <= files
    assert "tokenizer.json" in files or "vocab.txt" in files
    assert not files & {"model.safetensors", "head.safetensors", "raw.onnx", "optimized.onnx"}
    meta = json.loads((onnx_run / "onnx" / "classifier.json").read_text())
    assert meta["model_format"] == "onnx"
    assert meta["onnx"]["quantize"] is None
    assert not meta.keys() & {"label_names", "head_hidden", "dropout"}  # in config.json, as for transformers
    config = json.loads((onnx_run / "onnx" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["problem_type"] == "single_label_classification"
    # BERT, but one text: no segment ids; attention fused without a padding mask: no mask either
    assert meta["onnx"]["inputs"] == ["input_ids"]
    assert meta["onnx"]["fused"]["MultiHeadAttention"] == 2  # both layers' attention, ONNX Runtime's kernel
    int8 = json.loads((onnx_run / "onnx-int8" / "classifier.json").read_text())["onnx"]
    assert int8["quantize"] == "int8"
    assert int8["inputs"] == ["input_ids"]
    smaller = (onnx_run / "onnx-int8" / "model.onnx").stat().st_size < (onnx_run / "onnx" / "model.onnx").stat().st_size
    assert smaller
    card = (onnx_run / "onnx-int8" / "README.md").read_text()
    assert "library_name: onnx" in card and "with int8 weights" in card and "import onnxruntime" in card


def test_predictions_from_the_onnx_graph_equal_those_from_the_checkpoint(onnx_run):
    imdb("predict", "--model_dir", "onnx", "--data.predict_file", "reviews.txt", "--output", "onnx.jsonl",
         "--embeddings", *FP32, cwd=onnx_run)  # fmt: skip
    theirs, ours = records(onnx_run / "ckpt.jsonl"), records(onnx_run / "onnx.jsonl")
    assert [(r["line"], r["label"]) for r in ours] == [(r["line"], r["label"]) for r in theirs]
    for mine, checkpoint in zip(ours, theirs, strict=True):
        assert mine["probs"] == pytest.approx(checkpoint["probs"], abs=1e-5)
        assert mine["embedding"] == pytest.approx(checkpoint["embedding"], abs=1e-4)


def test_the_int8_graph_predicts_the_same_records_in_the_same_order(onnx_run):
    imdb("predict", "--model_dir", "onnx-int8", "--data.predict_file", "reviews.txt", "--output", "int8.csv",
         cwd=onnx_run)  # fmt: skip
    rows = (onnx_run / "int8.csv").read_text().splitlines()
    assert rows[0] == "line,label,score,prob_negative,prob_positive"
    theirs = records(onnx_run / "ckpt.jsonl")
    assert [int(row.split(",")[0]) for row in rows[1:]] == [r["line"] for r in theirs]
    probs = [float(row.split(",")[4]) for row in rows[1:]]
    # int8 weights move this 32-wide encoder's probabilities a little, not its decisions
    assert probs == pytest.approx([r["probs"]["positive"] for r in theirs], abs=0.05)


def test_an_int8_texts_scores_do_not_depend_on_its_batch(onnx_run):
    """Each text runs alone, unpadded, its activations quantized to its own range; a batch's texts
    run one per thread."""
    import torch
    from transformers import AutoTokenizer

    from imdb_cli.deploy.onnx_runtime import OnnxClassifier

    texts = ["great moving film, a joy", "dull plot", "a long and dull scene that goes on and on"]
    batch = AutoTokenizer.from_pretrained(onnx_run / "onnx-int8")(texts, padding=True, return_tensors="pt")
    graph = OnnxClassifier(onnx_run / "onnx-int8", threads=2)
    together, _ = graph(batch["input_ids"], batch["attention_mask"])
    for row, text in enumerate(texts):
        alone = AutoTokenizer.from_pretrained(onnx_run / "onnx-int8")([text], return_tensors="pt")
        logits, _ = graph(alone["input_ids"], alone["attention_mask"])
        assert torch.equal(logits[0], together[row])


def test_an_onnx_export_runs_in_its_own_precision_not_under_pytorchs_autocast(onnx_run):
    shown = imdb("predict", "--model_dir", "onnx-int8", "--print_config", cwd=onnx_run).stdout
    assert "precision: 32-true" in shown
    run = imdb("predict", "--model_dir", "onnx-int8", "--data.predict_file", "reviews.txt", cwd=onnx_run)
    assert "bfloat16" not in run.stderr and "native bf16" not in run.stderr


def test_testing_the_onnx_graph_gives_the_checkpoints_metrics(onnx_run, imdb_archive):
    imdb("test", "--ckpt_path", CKPT, "--report_dir", "ckpt-test", *FP32, cwd=onnx_run)
    ckpt = json.loads((onnx_run / "ckpt-test" / "test_metrics.json").read_text())
    imdb("test", "--model_dir", "onnx", "--data.source", imdb_archive, *FP32, cwd=onnx_run)
    graph = json.loads((onnx_run / "onnx" / "test" / "test_metrics.json").read_text())
    assert graph["samples"] == ckpt["samples"]
    assert graph["metrics"]["test_acc"] == pytest.approx(ckpt["metrics"]["test_acc"], abs=1e-6)
    assert graph["metrics"]["test_auroc"] == pytest.approx(ckpt["metrics"]["test_auroc"], abs=1e-6)


def test_the_model_card_snippet_runs_the_graph_with_onnx_runtime_alone(onnx_run):
    from imdb_cli.deploy.export import ONNX_USE

    in_card = ONNX_USE.replace('"exported"', '"onnx"')
    assert in_card in (onnx_run / "onnx" / "README.md").read_text()
    script = in_card.replace(
        'texts = ["A moving, beautifully acted film.", "Dull, predictable and far too long."]',
        'texts = ["great moving film", "dull plot and dull scene"]',
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=onnx_run, capture_output=True, text=True, check=True)
    plain = [line.split()[:2] for line in result.stdout.splitlines()]
    (onnx_run / "short.txt").write_text("great moving film\ndull plot and dull scene\n")
    ours = records_of(imdb("predict", "--model_dir", "onnx", "--data.predict_file", "short.txt", cwd=onnx_run).stdout)
    assert [label for label, _ in plain] == [r["label"] for r in ours]
    assert [float(score) for _, score in plain] == pytest.approx([r["score"] for r in ours], abs=2e-4)


def records_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["export", "--ckpt_path", CKPT, "--output_dir", "q", "--quantize", "int8"],
            "--quantize int8 needs --format onnx",
        ),
        (
            ["fit", "--model_dir", "onnx", "--data.source", "unused.tar.gz"],
            "onnx is an ONNX export, for predict, test and serve only: fine-tune from its checkpoint, "
            "or from an export with the default --format safetensors",
        ),
    ],
)
def test_onnx_mistakes_give_one_line(onnx_run, command, message):
    result = imdb(*command, cwd=onnx_run, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"imdb: error: {message}"
