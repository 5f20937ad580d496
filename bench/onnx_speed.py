"""What the ONNX export buys on this CPU: `imdb predict` from a checkpoint against its ONNX exports.

    .venv/bin/python bench/onnx_speed.py --ckpt_path CKPT --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

Every figure is a whole process, started as a user starts it (``--repeat``: each predict timing
that many times, the variants in turn, and the speedups run by run):
- predict (1000 test reviews, the checkpoint's max_length): the checkpoint at the CPU's default
  precision (bf16 where the CPU computes it natively, else fp32), the checkpoint in fp32, the ONNX
  export in fp32 and the int8 ONNX export;
- accuracy on 2000 labelled test reviews (`imdb test`): the checkpoint against the int8 export,
  and the share of the 2000 test reviews whose predicted label the two agree on.
The exports are made by `imdb export --format onnx [--quantize int8]`. Results are printed and
written to `bench/results/onnx.json` (`--out`), with the command, machine and date.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record
from speed import IMDB, timed


def labels(path: Path) -> list[str]:
    return [json.loads(line)["label"] for line in path.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint of imdb fit")
    parser.add_argument("--archive", required=True, help="the aclImdb archive, for its test reviews")
    parser.add_argument("--predict", type=int, default=1000, help="test reviews for the predict timing")
    parser.add_argument("--test", type=int, default=2000, help="labelled test reviews for accuracy")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each predict timing, in turn")
    parser.add_argument("--out", help="the result file (default bench/results/onnx.json)")
    args = parser.parse_args()
    ckpt, archive = str(Path(args.ckpt_path).resolve()), str(Path(args.archive).resolve())
    work = Path(tempfile.mkdtemp(prefix="imdb-onnx-"))
    results: dict = {"predict_reviews": args.predict, "test_reviews": args.test}

    from imdb_cli.data import IMDBDataModule

    for count in {args.predict, args.test}:
        reviews = IMDBDataModule(source=archive, max_test_samples=count).labeled_texts("test").texts
        text = "\n".join(t.replace("\n", " ") for t in reviews) + "\n"
        (work / f"reviews{count}.txt").write_text(text, encoding="utf-8")
    for name, extra in (("onnx-fp32", []), ("onnx-int8", ["--quantize", "int8"])):
        timed([*IMDB, "export", "--ckpt_path", ckpt, "--output_dir", name, "--format", "onnx", *extra], work)
        results[f"{name} MB"] = round((work / name / "model.onnx").stat().st_size / 1e6, 1)

    runs = {
        "checkpoint, default precision": ["--ckpt_path", ckpt],
        "checkpoint, fp32": ["--ckpt_path", ckpt, "--trainer.precision", "32-true"],
        "onnx fp32": ["--model_dir", "onnx-fp32"],
        "onnx int8": ["--model_dir", "onnx-int8"],
    }
    runs_seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):  # in turn, so that a slow spell of the machine falls on every variant
        for name, model in runs.items():
            out = f"{name.replace(' ', '_').replace(',', '')}.jsonl"
            command = [*IMDB, "predict", *model, "--data.predict_file", f"reviews{args.predict}.txt", "--output", out]
            runs_seconds[name].append(round(timed(command, work)[0], 2))
    results["predict_seconds"] = runs_seconds
    base = runs_seconds["checkpoint, default precision"]
    results["predict_speedup_over_default"] = {
        name: [round(b / s, 3) for b, s in zip(base, seconds, strict=True)] for name, seconds in runs_seconds.items()
    }

    accuracy = results["test_acc"] = {}
    for name, model in (("checkpoint", ["--ckpt_path", ckpt]), ("onnx int8", ["--model_dir", "onnx-int8"])):
        report = work / f"test-{name.replace(' ', '-')}"
        command = [*IMDB, "test", *model, "--data.source", archive, "--data.max_test_samples", str(args.test)]
        timed([*command, "--report_dir", str(report)], work)
        accuracy[name] = json.loads((report / "test_metrics.json").read_text())["metrics"]["test_acc"]
    results["test_acc_points_lost"] = round(100 * (accuracy["checkpoint"] - accuracy["onnx int8"]), 2)

    pairs = []
    for name, model in (("checkpoint", ["--ckpt_path", ckpt]), ("int8", ["--model_dir", "onnx-int8"])):
        out = f"agree-{name}.jsonl"
        timed([*IMDB, "predict", *model, "--data.predict_file", f"reviews{args.test}.txt", "--output", out], work)
        pairs.append(labels(work / out))
    results["label_agreement"] = round(sum(a == b for a, b in zip(*pairs, strict=True)) / len(pairs[0]), 4)

    print(json.dumps(results, indent=2))
    record.write("onnx", results, args.out)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
