"""Where the seconds of a whole-process fit go: imdb-cli (Lightning's simple profiler) beside the Hugging
Face Trainer (its callback hooks and a clock), on the same reviews, in one run.

    .venv/bin/python bench/breakdown.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz --train 1024

imdb-cli runs as a user runs it: ``imdb fit --config configs/minilm.yaml --data.source ARCHIVE
--data.max_train_samples N --trainer.profiler simple``, twice (token cache cold, then warm). Its
small-data rule (``--trainer.min_optimizer_steps``) sets the number of epochs; the Trainer
(``bench/hf_baseline.py``, at its best: length-grouped batches, bf16 where the CPU has it, attention
dropout 0) trains as many epochs on the same texts and, like imdb-cli, evaluates the same held-out
reviews and saves a checkpoint at each epoch's end, keeping the best. Every second of each process
falls in one phase; what no phase names is "other". ``--repeats N`` runs the three processes N times
in turn (a fresh token cache each round) and keeps, for each, the run of median wall time: a 2-core
machine's run-to-run noise is about a tenth. Results go to ``bench/results/breakdown.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402
from speed import HF, IMDB  # noqa: E402

CHECKPOINTS = ("[Callback]BestCheckpoint", "[Callback]LastCheckpoint")


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    """Run ``command`` to its end; its wall seconds and standard output (its errors on failure)."""
    print("$", " ".join(command), flush=True)
    start = time.time()
    env = {**os.environ, "BENCH_T0": str(start)}  # hf_baseline.py counts its phases from here
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.time() - start
    if result.returncode:
        sys.exit(f"failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(f"  {seconds:.1f} s", flush=True)
    return seconds, result.stdout + result.stderr


def profiler_actions(output: str) -> dict[str, tuple[int, float]]:
    """Each action of Lightning's simple profiler report: (calls, total seconds)."""
    actions = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("\t|")]
        if len(cells) == 5 and cells[2].isdigit():
            actions[cells[0]] = (int(cells[2]), float(cells[3]))
    return actions


def imdb_phases(wall: float, actions: dict[str, tuple[int, float]]) -> dict[str, float]:
    """The process's wall time split into phases that do not overlap, from the profiler's actions."""

    def total(match) -> float:
        return sum(seconds for name, (_, seconds) in actions.items() if match(name))

    def named(suffix: str) -> float:
        return total(lambda name: name.endswith(suffix) and not name.startswith("[Callback]"))

    forward = named("Strategy.training_step")
    backward = named("Strategy.backward")
    phases = {
        "start-up, imports and exit": wall - actions["Total"][1],
        "reading and tokenizing": total(
            lambda n: n.startswith("[LightningDataModule]") and n.endswith(("prepare_data", ".setup"))
        ),
        "head warm start": named("SentimentClassifier.on_fit_start"),
        "training: data": named("train_dataloader_next"),
        "training: forward": forward,
        "training: backward": backward,
        "training: optimizer and clipping": named("SentimentClassifier.optimizer_step") - forward - backward,
        "validation": total(lambda n: ("validation" in n or "val_next" in n) and not n.startswith(CHECKPOINTS)),
        "checkpoints": total(lambda n: n.startswith(CHECKPOINTS)),
    }
    phases["other: trainer, progress bar, LR monitor, logging"] = wall - sum(phases.values())
    return phases


def imdb_fit(work: Path, name: str, archive: str, train: int) -> dict:
    wall, output = run(
        [*IMDB, "fit", "--config", str(ROOT / "configs/minilm.yaml"), "--data.source", archive,
         "--data.max_train_samples", str(train), "--data.cache_dir", str(work / "cache"),
         "--trainer.default_root_dir", str(work / name), "--trainer.profiler", "simple"],
        work,
    )  # fmt: skip
    actions = profiler_actions(output)
    epochs = re.search(r"(\d+) epochs for at least", output)
    return {
        "wall_s": wall,
        "epochs": int(epochs[1]) if epochs else 1,
        "steps": actions["run_training_batch"][0],
        "phases": imdb_phases(wall, actions),
    }


def hf_fit(work: Path, archive: str, train: int, epochs: int) -> dict:
    wall, output = run(
        [*HF, "fit", "--archive", archive, "--train", str(train), "--epochs", str(epochs), "--validate",
         "--attention-dropout", "0", "--out", str(work / "hf")],
        work,
    )  # fmt: skip
    reported = json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("{")))
    phases = reported["phases"]
    phases["exit"] = wall - sum(phases.values())
    return {"wall_s": wall, "epochs": epochs, "steps": reported["steps"], "phases": phases}


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even number)."""
    return sorted(runs, key=lambda run: run["wall_s"])[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", default=str(ROOT.parent / "shared/data/imdb/aclImdb_labeled.tar.gz"))
    parser.add_argument("--train", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three processes; the median is kept")
    parser.add_argument("--out", help="the result file (default bench/results/breakdown.json)")
    args = parser.parse_args()
    archive = str(Path(args.archive).resolve())
    rounds = []
    for _ in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="imdb-breakdown-"))
        cold = imdb_fit(work, "cold", archive, args.train)
        warm = imdb_fit(work, "warm", archive, args.train)
        trainer = hf_fit(work, archive, args.train, cold["epochs"])
        rounds.append({"imdb-cli (cold cache)": cold, "imdb-cli (warm cache)": warm, "hf-trainer": trainer})
    runs = {name: median_run([r[name] for r in rounds]) for name in rounds[0]}
    results = {
        "train_reviews": args.train,
        "max_length": 512,
        "repeats": args.repeats,
        "runs": runs,
        "wall_s": {name: [round(r[name]["wall_s"], 1) for r in rounds] for name in runs},
        "ratio_cold": runs["hf-trainer"]["wall_s"] / runs["imdb-cli (cold cache)"]["wall_s"],
        "ratio_warm": runs["hf-trainer"]["wall_s"] / runs["imdb-cli (warm cache)"]["wall_s"],
    }
    print(json.dumps(results, indent=1))
    record.write("breakdown", results, args.out)


if __name__ == "__main__":
    main()
