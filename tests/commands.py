"""Running the `imdb` command as a user does: a subprocess, offline, output captured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFIGS = Path(__file__).parent.parent / "configs"
IMDB = str(Path(sys.executable).with_name("imdb"))


def imdb(*args: str, cwd: Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [IMDB, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=300
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
