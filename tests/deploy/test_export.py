"""`imdb export` end to end: fit, test and export a tiny classifier, then predict from the export."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import imdb
from tests.conftest import CKPT

EXPORT_GUIDE = Path(__file__).parents[2] / "docs" / "guides" / "export.md"


@pytest.fixture(scope="module")
def exported(fitted_run):
    """The fitted and tested classifier exported, and reviews to predict."""
    export = imdb("export", "--ckpt_path", CKPT, "--output_dir", "exported", cwd=fitted_run)
    assert f"exported {CKPT} to exported" in export.stdout
    return fitted_run


def test_the_export_is_self_contained(exported):
    files = {p.name for p in (exported / "exported").iterdir()}
    assert {"config.json", "model.safetensors", "head.safetensors", "classifier.json", "README.md"} <= files
    assert "tokenizer.json" in files or "vocab.txt" in files
    meta = json.loads((exported / "exported" / "classifier.json").read_text())
    assert meta["label_names"] == ["negative", "positive"]
    assert (meta["max_length"], meta["truncation"], meta["head_tokens"]) == (24, "head_tail", 128)
    assert not list(exported.glob(".exported.*")), "temporary directory left behind"


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


def test_the_model_card_holds_the_test_metrics(exported):
    card = (exported / "exported" / "README.md").read_text()
    report = json.loads((exported / "runs/lightning_logs/version_0/test/best/test_metrics.json").read_text())
    assert f"| test_acc | {report['metrics']['test_acc']:.4f} |" in card
    assert f"On {report['samples']} test texts" in card
    assert "imdb predict --model_dir exported" in card
    assert "longer texts keep their first 22 tokens." in card  # 24 tokens with [CLS] and [SEP]: head_tokens 128 is moot
    assert "pipeline_tag" not in card  # pipeline("text-classification") would load a random head


def test_the_model_card_says_which_tokens_a_long_text_keeps():
    from imdb_cli.deploy.export import _kept

    meta = {"max_length": 512, "truncation": "head_tail", "head_tokens": 128}
    assert _kept(meta, 2) == "their first 128 and last 382 tokens"
    assert _kept({**meta, "head_tokens": 600}, 2) == "their first 510 tokens"
    assert _kept({**meta, "truncation": "tail"}, 2) == "their last 510 tokens"


def test_the_export_guide_snippet_loads_the_export_with_plain_transformers(exported):
    """The export guide's code, run as written, agrees with `imdb predict` on texts within max_length."""
    from imdb_cli.deploy.export import PLAIN_USE

    snippet = re.search(r"```python\n(.*?)```", EXPORT_GUIDE.read_text(), re.S)[1]
    assert snippet == PLAIN_USE
    assert PLAIN_USE in (exported / "exported" / "README.md").read_text()
    script = snippet.replace(
        'texts = ["A moving, beautifully acted film.", "Dull, predictable and far too long."]',
        'texts = ["great moving film", "dull plot and dull scene"]',
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=exported, capture_output=True, text=True, check=True)
    plain = [line.split()[:2] for line in result.stdout.splitlines()]
    (exported / "short.txt").write_text("great moving film\ndull plot and dull scene\n")
    ours = imdb("predict", "--model_dir", "exported", "--data.predict_file", "short.txt",
                "--trainer.precision", "32-true", cwd=exported).stdout  # fmt: skip
    records = [json.loads(line) for line in ours.splitlines()]
    assert [label for label, _ in plain] == [r["label"] for r in records]
    assert [float(score) for _, score in plain] == pytest.approx([r["score"] for r in records], abs=2e-4)


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
        (["--model_dir", "runs"], "runs is not a directory written by imdb export: it has no classifier.json"),
        (["--model_dir", "exported", "--ckpt_path", CKPT], "pass --ckpt_path or --model_dir, not both"),
    ],
)
def test_model_dir_mistakes_give_one_line(exported, args, message):
    result = imdb("predict", *args, "--data.predict_file", "reviews.txt", cwd=exported, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"imdb: error: {message}"
