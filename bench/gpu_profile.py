"""Samples per second and peak GPU memory of the reference recipe on one GPU (docs: Benchmarks, GPU).

    python bench/gpu_profile.py --archive aclImdb_v1.tar.gz --encoder distilbert-base-uncased

Runs `imdb fit --config configs/distilbert.yaml --trainer configs/trainer/gpu.yaml` on the whole
archive (18,750 training and 6,250 validation reviews, 512 tokens, batch 16, one epoch), then
`imdb test` on its 25,000 test reviews, each with the :class:`Throughput` callback, which times the
training, validation and test loops apart and reads the peak GPU memory. Then a short fit with
`--data.num_workers 0` and another with 4 show what DataLoader workers change. Results go to
`bench/results/gpu.json` (--out);
any other flag is passed to every `imdb` run.

``--random_weights`` builds the encoder from its config alone, for machines that cannot reach the
Hugging Face Hub: speed and memory are those of the real model, accuracy is meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from pytorch_lightning import Callback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

IMDB = [sys.executable, "-m", "imdb_cli"]


class Throughput(Callback):
    """Times each loop apart (CUDA synchronised at every boundary) and writes
    ``throughput-STAGE.json`` into the run's ``default_root_dir``."""

    def __init__(self) -> None:
        self.samples = {"train": 0, "val": 0, "test": 0}
        self.seconds = {"train": 0.0, "val": 0.0, "test": 0.0}
        self.started: dict[str, float] = {}

    def _start(self, loop: str) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.started[loop] = time.perf_counter()

    def _stop(self, loop: str) -> None:
        if loop in self.started:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds[loop] += time.perf_counter() - self.started.pop(loop)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start("train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.samples["train"] += len(batch["labels"])

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._stop("train")
            self._start("val")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self.samples["val"] += len(batch["labels"])

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._stop("val")
            if trainer.state.fn == "fit":
                self._start("train")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop("train")

    def on_test_start(self, trainer, pl_module) -> None:
        self._start("test")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.samples["test"] += len(batch["labels"])

    def on_test_end(self, trainer, pl_module) -> None:
        self._stop("test")
        self._write(trainer, "test")

    def on_fit_end(self, trainer, pl_module) -> None:
        self._write(trainer, "fit")

    def _write(self, trainer, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        result = {
            loop: {
                "samples": n,
                "seconds": round(self.seconds[loop], 2),
                "samples_per_s": round(n / self.seconds[loop], 1),
            }
            for loop, n in self.samples.items()
            if n
        }
        if torch.cuda.is_available():
            result["device"] = torch.cuda.get_device_name()
            result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
        result["precision"] = str(trainer.precision)
        result["world_size"] = trainer.world_size
        Path(trainer.default_root_dir, f"throughput-{stage}.json").write_text(json.dumps(result, indent=1))


def run(args: list[str], work: Path, name: str) -> dict:
    """One `imdb` process with the Throughput callback; its results and wall-clock seconds."""
    command = [*IMDB, *args, "--trainer.default_root_dir", str(work / name), "--data.cache_dir", str(work / "cache")]
    command += ["--trainer.callbacks+=bench.gpu_profile.Throughput"]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = round(time.perf_counter() - start, 1)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}) after {wall} s:\n{result.stderr[-4000:]}")
    stage = args[0] if args[0] == "test" else "fit"
    found = json.loads((work / name / f"throughput-{stage}.json").read_text())
    found["wall_s"] = wall
    found["stdout_tail"] = result.stdout[-1500:]
    print(json.dumps({k: v for k, v in found.items() if k != "stdout_tail"}), flush=True)
    return found


def random_encoder(name: str, work: Path) -> str:
    """``name``'s architecture with random weights, saved with its tokenizer."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = work / "random-encoder"
    AutoModel.from_config(AutoConfig.from_pretrained(name)).save_pretrained(path)
    AutoTokenizer.from_pretrained(name).save_pretrained(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", required=True, help="aclImdb_v1.tar.gz or an aclImdb/ directory")
    parser.add_argument("--encoder", default="distilbert-base-uncased")
    parser.add_argument("--random_weights", action="store_true", help="the encoder's config only, no weights")
    parser.add_argument("--workers_batches", type=int, default=300, help="training steps of each workers run")
    parser.add_argument("--out", help="the result file (default bench/results/gpu.json)")
    args, extra = parser.parse_known_args()  # any other flag goes to every imdb run

    work = Path(tempfile.mkdtemp(prefix="imdb-gpu-"))
    encoder = random_encoder(args.encoder, work) if args.random_weights else args.encoder
    recipe = [
        "--config",
        str(ROOT / "configs" / "distilbert.yaml"),
        "--trainer",
        str(ROOT / "configs/trainer/gpu.yaml"),
    ]
    recipe += ["--model.encoder", encoder, "--data.source", str(Path(args.archive).resolve()), *extra]
    results = {"encoder": args.encoder, "random_weights": args.random_weights}
    results["fit"] = run(["fit", *recipe], work, "full")
    best = work / "full/lightning_logs/version_0/checkpoints/best.ckpt"
    gpu = ["--trainer", str(ROOT / "configs/trainer/gpu.yaml"), *extra]
    results["test"] = run(["test", "--ckpt_path", str(best), *gpu], work, "full")
    short = ["--trainer.limit_train_batches", str(args.workers_batches), "--trainer.limit_val_batches", "50"]
    for workers in (0, 4):
        results[f"workers_{workers}"] = run(["fit", *recipe, *short, "--data.num_workers", str(workers)],
                                            work, f"workers{workers}")  # fmt: skip
    record.write("gpu", {"gpu_profile": results}, args.out)


if __name__ == "__main__":
    main()
