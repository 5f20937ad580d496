"""The MLP head against the architecture's own (`--model.head mlp | auto`) on MiniLM, over several seeds.

    .venv/bin/python bench/head_choice.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

Each run is the shipped MiniLM recipe (configs/minilm.yaml, one epoch) with one head and one seed, on
the same `--train` training reviews (validated on `--val`) at `--max_length` tokens, then `imdb test`
on the first `--test` reviews of the test split. The seed (`--seed_everything`) sets the head's
initialisation, dropout and batch order; the reviews are the same in every run. The result, with
each head's mean and standard deviation, is written to `bench/results/heads.json` (`--out`).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402
from speed import IMDB, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", required=True)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=250)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--heads", nargs="+", choices=["mlp", "auto"], default=["mlp", "auto"])
    parser.add_argument("--out", default=str(ROOT / "bench/results/heads.json"))
    parser.add_argument("--fit_args", default="", help='more `imdb fit` options: "--model.head_warm_start_length 512"')
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="head_choice."))
    archive = str(Path(args.archive).resolve())
    data = [
        "--data.source", archive, "--data.max_length", str(args.max_length), "--data.cache_dir", str(work / "cache"),
    ]  # fmt: skip
    runs = []
    for seed in args.seeds:
        for head in args.heads:
            root = work / f"{head}-{seed}"
            fit_s, out = timed(
                [*IMDB, "fit", "--config", str(ROOT / "configs/minilm.yaml"), *data, "--model.head", head,
                 "--seed_everything", str(seed), "--data.max_train_samples", str(args.train),
                 "--data.max_val_samples", str(args.val), "--trainer.default_root_dir", str(root),
                 *shlex.split(args.fit_args)],
                work,
            )  # fmt: skip
            ckpt = re.search(r"best checkpoint: (\S+)", out)[1]
            _, out = timed(
                [*IMDB, "test", "--ckpt_path", ckpt, *data, "--data.max_test_samples", str(args.test),
                 "--trainer.logger", "false"],
                work,
            )  # fmt: skip
            acc = float(re.search(r"test_acc\W+(\d\.\d+)", out)[1])
            runs.append({"head": head, "seed": seed, "test_acc": acc, "fit_seconds": round(fit_s, 1)})
            print(runs[-1], flush=True)
    summary = {}
    for head in args.heads:
        accs = [r["test_acc"] for r in runs if r["head"] == head]
        summary[head] = {"mean": round(statistics.mean(accs), 4), "std": round(statistics.stdev(accs), 4)}
    compared = {}
    if len(summary) == 2:
        difference = summary["auto"]["mean"] - summary["mlp"]["mean"]
        noise = (summary["auto"]["std"] ** 2 / len(args.seeds) + summary["mlp"]["std"] ** 2 / len(args.seeds)) ** 0.5
        compared = {
            "auto_minus_mlp": round(difference, 4),
            "standard_error": round(noise, 4),
            "beyond_noise": abs(difference) > 2 * noise,
        }
    results = {
        "encoder": "all-MiniLM-L6-v2 (configs/minilm.yaml)",
        "train_reviews": args.train,
        "val_reviews": args.val,
        "test_reviews": args.test,
        "max_length": args.max_length,
        "fit_args": args.fit_args,
        "runs": runs,
        "summary": summary,
        **compared,
    }
    print(json.dumps(results, indent=1))
    record.write(Path(args.out).stem, results, args.out)


if __name__ == "__main__":
    main()
