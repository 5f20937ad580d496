"""The small-data benchmark: the shipped MiniLM config on a few labelled reviews per class and on a
95/5 set, each tested on the same 2,000 balanced test reviews (setfit's figures, from
``bench/setfit_baseline.py`` on the same files, sit beside them on the benchmark page).

    python bench/small_sets.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz --out runs/small/sets
    python bench/small_data.py --sets runs/small/sets --runs runs/small --sets_of few --shots 8 16 64
    python bench/small_data.py --sets runs/small/sets --runs runs/small --sets_of skewed --variant class_weights
    python bench/small_data.py --sets runs/small/sets --runs runs/small --sets_of skewed \\
        --variant class_weights --variant sampler --variant steps500

Every run is two whole processes, as a user runs them: ``imdb fit --config configs/minilm.yaml
--data.train_file SET --seed_everything SEED`` with the variant's options, then ``imdb test`` of its
``best.ckpt`` (``last.ckpt`` when the set was too small to validate) on ``test.csv``. The variants:

- ``shipped``: the config as it is (its small-data rules: at least 100 optimizer steps, no validation
  split under 100 texts, the head fitted before fine-tuning);
- ``steps500``: ``--trainer.min_optimizer_steps 500``, as many epochs as make 500 optimizer steps;
- ``class_weights``: ``--model.class_weights balanced``;
- ``sampler``: ``--data.sampler balanced``;
- ``both``: class weights and the balanced sampler.

Figures go to ``bench/results/small_data.json``; runs recorded there before are kept, so that the
sets can be run apart (the 64-per-class ones take longest).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import record

CONFIG = record.ROOT / "configs" / "minilm.yaml"
NAME = "small_data"
VARIANTS = {
    "shipped": [],
    "steps500": ["--trainer.min_optimizer_steps", "500"],
    "class_weights": ["--model.class_weights", "balanced"],
    "sampler": ["--data.sampler", "balanced"],
    "both": ["--model.class_weights", "balanced", "--data.sampler", "balanced"],
}
MINORITY = "positive"


def imdb(*args: str, log: Path, threads: int | None) -> float:
    """Run ``imdb ARGS`` to its end, its output into ``log``; the seconds it took."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [str(Path(sys.executable).with_name("imdb")), *map(str, args)]
    start = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed: see {log}")
    return time.perf_counter() - start


def run(sets: Path, runs: Path, name: str, seed: int, variant: str, threads: int | None) -> dict:
    root = runs / variant / f"{name}_run{seed}"
    shutil.rmtree(root, ignore_errors=True)  # a checkpoint left from an earlier run would be tested instead
    root.mkdir(parents=True)
    fit_s = imdb(
        "fit", "--config", CONFIG, "--data.train_file", sets / f"{name}.csv", "--data.test_file", sets / "test.csv",
        "--seed_everything", seed, "--trainer.default_root_dir", root, "--trainer.logger.init_args.version", "run",
        *VARIANTS[variant], log=root / "fit.log", threads=threads,
    )  # fmt: skip
    checkpoints = root / "lightning_logs" / "run" / "checkpoints"
    ckpt = checkpoints / "best.ckpt"  # a set too small to hold out --data.min_val_texts trains without one
    ckpt = ckpt if ckpt.exists() else checkpoints / "last.ckpt"
    last = _load(checkpoints / "last.ckpt")
    test_s = imdb(
        "test", "--ckpt_path", ckpt, "--trainer.logger", "false", "--report_dir", root / "test",
        log=root / "test.log", threads=threads,
    )  # fmt: skip
    report = json.loads((root / "test" / "test_metrics.json").read_text())
    metrics = report["metrics"]
    result = {
        "set": name,
        "seed": seed,
        "variant": variant,
        "test_acc": round(metrics["test_acc"], 4),
        "test_f1": round(metrics["test_f1"], 4),
        "minority_recall": round(report["per_class"][MINORITY]["recall"], 4),
        "epochs": last["epoch"] + 1,
        "steps": last["global_step"],
        "checkpoint": ckpt.name,
        "best_epoch": _load(ckpt)["epoch"],
        "fit_s": round(fit_s, 1),
        "test_s": round(test_s, 1),
        "threads": threads,
    }
    print(json.dumps(result), flush=True)
    return result


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, required=True, help="the directory bench/small_sets.py wrote")
    parser.add_argument("--runs", type=Path, required=True, help="where the runs go")
    parser.add_argument("--sets_of", choices=["few", "skewed"], default="few")
    parser.add_argument("--shots", type=int, nargs="+", default=[8, 16], help="labelled reviews per class (few)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", choices=VARIANTS, action="append", help="repeatable; default: shipped")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every run")
    args = parser.parse_args()
    names = [f"few{k}" for k in args.shots] if args.sets_of == "few" else ["skewed"]
    path = record.RESULTS / f"{NAME}.json"
    for variant in args.variant or ["shipped"]:
        for name in names:
            for seed in args.seeds:
                result = run(args.sets, args.runs, f"{name}_seed{seed}", seed, variant, args.threads)
                key = (result["set"], seed, variant)
                runs = json.loads(path.read_text())["results"]["runs"] if path.exists() else []  # another may add
                runs = [r for r in runs if (r["set"], r["seed"], r["variant"]) != key] + [result]
                runs.sort(key=lambda r: (r["set"], r["variant"], r["seed"]))
                record.write(NAME, {"config": "configs/minilm.yaml", "test_reviews": 2000, "runs": runs})


if __name__ == "__main__":
    main()
