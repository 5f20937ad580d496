"""The reference recipe's accuracy: one epoch of the bundled MiniLM on IMDB, tested on the test split.

    .venv/bin/python bench/accuracy.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

`imdb fit --config configs/minilm.yaml` on the archive (18,750 training reviews, 6,250 held out,
512 tokens, batch 16, Adam with OneCycleLR, one epoch), then `imdb test` of its best checkpoint on
every test review, each a whole process as a user runs it. ``--train``/``--test`` take seeded subsets
for a quicker check. The run stays in ``--runs`` (its checkpoint is what `bench/onnx_speed.py` and
`bench/serve_load.py` measure); the figures, with the wall time of each command, go to
``bench/results/accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record
from speed import IMDB, ROOT, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", default=str(ROOT.parent / "shared/data/imdb/aclImdb_labeled.tar.gz"))
    parser.add_argument("--train", type=int, default=0, help="training reviews before the split (0: all 25,000)")
    parser.add_argument("--test", type=int, default=0, help="test reviews (0: all 25,000)")
    parser.add_argument("--runs", default="runs/accuracy", help="the run directory (--trainer.default_root_dir)")
    parser.add_argument("--out", help="the result file (default bench/results/accuracy.json)")
    args = parser.parse_args()
    archive, runs = str(Path(args.archive).resolve()), Path(args.runs).resolve()
    subset = ["--data.max_train_samples", str(args.train)] if args.train else []
    fit = [*IMDB, "fit", "--config", str(ROOT / "configs" / "minilm.yaml"), "--data.source", archive, *subset,
           "--trainer.default_root_dir", str(runs), "--trainer.logger.init_args.version", "bench"]  # fmt: skip
    fit_seconds, out = timed(fit, ROOT)
    found = re.search(r"best checkpoint: (\S+) \(val_acc=([\d.]+)\)", out)
    if not found:
        sys.exit(f"no best checkpoint in the fit's output:\n{out[-2000:]}")
    ckpt, val_acc = Path(found[1]), float(found[2])
    report = runs / "test"
    test = [*IMDB, "test", "--ckpt_path", str(ckpt), "--report_dir", str(report)]
    test_seconds, _ = timed([*test, "--data.max_test_samples", str(args.test)] if args.test else test, ROOT)
    metrics = json.loads((report / "test_metrics.json").read_text())
    config = (ckpt.parent.parent / "config.yaml").read_text()
    results = {
        "recipe": "configs/minilm.yaml: all-MiniLM-L6-v2, one epoch, batch 16, 512 tokens, Adam + OneCycleLR",
        "max_length": int(re.search(r"max_length: (\d+)", config)[1]),
        "head": re.search(r"^  head: (\w+)", config, re.M)[1],
        "train_reviews": args.train or 25000,
        "test_reviews": metrics["samples"],
        "val_acc": val_acc,
        "test": metrics["metrics"],
        "confusion_matrix": metrics.get("confusion_matrix"),
        "fit_seconds": round(fit_seconds, 1),
        "test_seconds": round(test_seconds, 1),
        "checkpoint": str(ckpt),
    }
    print(json.dumps(results, indent=2))
    record.write("accuracy", results, args.out)


if __name__ == "__main__":
    main()
