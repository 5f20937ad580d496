"""Crash safety: a fit killed with SIGKILL resumes from last.ckpt to exactly the uninterrupted step count."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

from tests.commands import IMDB, argv

ROOT = Path(__file__).parent.parent

# A trainer file like configs/trainer/default.yaml, with a last.ckpt every 2 steps instead of 100.
TRAINER = """
max_epochs: 2
enable_progress_bar: false
logger:
  class_path: pytorch_lightning.loggers.TensorBoardLogger
  init_args: {save_dir: .}
callbacks:
  - class_path: imdb_cli.callbacks.LastCheckpoint
    init_args: {every_n_train_steps: 2}
"""


def fit_args(encoder: Path, archive: Path, root: str) -> list[str]:
    return [
        "fit", "--model.encoder", str(encoder), "--data.source", str(archive), "--data.max_length", "32",
        "--data.batch_size", "2", "--data.max_val_samples", "2", "--trainer", "trainer.yaml",
        "--trainer.default_root_dir", root, "--trainer.logger.init_args.version", "run",
        "--trainer.callbacks+=tests.crash_callbacks.RecordBatches", "--trainer.callbacks.path", f"{root}.steps",
    ]  # fmt: skip


def imdb_with_tests(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`imdb` that can import the callbacks of tests/crash_callbacks.py."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([IMDB, *argv(*args)], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert not check or result.returncode == 0, result.stderr[-3000:]
    return result


def trained(steps_file: Path) -> dict[int, str]:
    """Optimizer step -> the tokens it trained on (the last record wins: a resumed step replaces a lost one)."""
    return dict(line.split(" ", 1) for line in steps_file.read_text().splitlines())


def steps_in(ckpt: Path) -> int:
    return torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"]


def test_killed_fit_resumes_to_the_same_steps_on_the_same_batches(tmp_path, tiny_encoder, imdb_archive):
    (tmp_path / "trainer.yaml").write_text(TRAINER)
    imdb_with_tests(*fit_args(tiny_encoder, imdb_archive, "whole"), cwd=tmp_path)
    whole = steps_in(tmp_path / "whole/lightning_logs/run/checkpoints/last.ckpt")
    assert whole == 2 * 9  # 18 training reviews in batches of 2, two epochs

    kill = ["--trainer.callbacks+=tests.crash_callbacks.KillAfterStep", "--trainer.callbacks.step", "5"]
    killed = imdb_with_tests(*fit_args(tiny_encoder, imdb_archive, "killed"), *kill, cwd=tmp_path, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    last = tmp_path / "killed/lightning_logs/run/checkpoints/last.ckpt"
    assert steps_in(last) == 4  # the last step checkpoint before the kill, in the middle of epoch 1

    imdb_with_tests(*fit_args(tiny_encoder, imdb_archive, "killed"), "--ckpt_path", str(last), cwd=tmp_path)
    assert steps_in(last) == whole
    assert trained(tmp_path / "killed.steps") == trained(tmp_path / "whole.steps")  # no batch lost or repeated
