"""Check `imdb lr_find` against a small `imdb sweep` of OneCycleLR's max_lr on a real slice of IMDB.

    .venv/bin/python bench/lr_find_check.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

Both run the shipped MiniLM recipe (configs/minilm.yaml) on the same reviews: `--train` training
reviews at `--max_length` tokens, validated on `--val` reviews. The sweep is a grid of max_lr
(one epoch each); lr_find runs with its defaults (an epoch's steps, at most 100). The result says
whether the suggestion lands within a factor of 3 of the sweep's best max_lr, and is written to
`bench/results/lr_find.json` (`--out`) with the command, machine and date.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402
from speed import IMDB, timed  # noqa: E402

GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", required=True)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--out", default=str(ROOT / "bench/results/lr_find.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lr_find_check."))
    data = [
        "--config", str(ROOT / "configs/minilm.yaml"), "--data.source", str(Path(args.archive).resolve()),
        "--data.max_train_samples", str(args.train), "--data.max_val_samples", str(args.val),
        "--data.max_length", str(args.max_length), "--data.cache_dir", str(work / "cache"),
    ]  # fmt: skip
    grid = ", ".join(f"{lr:g}" for lr in GRID)
    sweep_file = work / "max_lr.yaml"
    sweep_file.write_text(f"sampler: grid\npruner: none\nparameters:\n  model.scheduler.init_args.max_lr: [{grid}]\n")
    sweep_s, _ = timed([*IMDB, "sweep", *data, "--sweep", str(sweep_file), "--trainer.default_root_dir", "sweep"], work)
    with open(work / "sweep/sweep/trials.csv", newline="") as f:
        trials = [(float(r["model.scheduler.init_args.max_lr"]), float(r["val_acc"])) for r in csv.DictReader(f)]
    best_lr, best_acc = max(trials, key=lambda t: t[1])
    find_s, _ = timed([*IMDB, "lr_find", *data, "--trainer.default_root_dir", "find"], work)
    found = json.loads((work / "find/lr_find/lr_find.json").read_text())
    suggestion = found["suggestion"]
    ratio = max(suggestion / best_lr, best_lr / suggestion) if suggestion else None
    results = {
        "train_reviews": args.train,
        "val_reviews": args.val,
        "max_length": args.max_length,
        "sweep": [{"max_lr": lr, "val_acc": acc} for lr, acc in sorted(trials)],
        "sweep_best_max_lr": best_lr,
        "sweep_best_val_acc": best_acc,
        "sweep_seconds": round(sweep_s, 1),
        "lr_find_suggestion": suggestion,
        "lr_find_steps": found["steps"],
        "lr_find_seconds": round(find_s, 1),
        "factor": round(ratio, 2) if ratio else None,
        "within_3x": bool(ratio and ratio <= 3),
    }
    print(json.dumps(results, indent=1))
    record.write("lr_find", results, args.out)


if __name__ == "__main__":
    main()
