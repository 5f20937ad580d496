"""Build the small-data sets of the small-data benchmark from the real aclImdb archive.

    python bench/small_sets.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz --out runs/small/sets

writes CSV files (``text,label``), each drawn with its own seed from the training reviews:

- ``few{K}_seed{S}.csv``: K labelled reviews per class (K = 8, 16, 64), for seeds 0, 1, 2;
- ``skewed_seed{S}.csv``: 2,000 reviews, 95% negative (1,900) and 5% positive (100);
- ``test.csv``: 2,000 test reviews, 1,000 per class, the same for every run.

``bench/small_data.py`` fits and tests on them; ``bench/setfit_baseline.py`` runs setfit on the same files.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

from imdb_cli.data.sources import read_aclimdb

SHOTS = (8, 16, 64)
SEEDS = (0, 1, 2)
SKEWED = {"negative": 1900, "positive": 100}
TEST_PER_CLASS = 1000


def by_label(archive: Path, split: str) -> dict[str, list[str]]:
    data = read_aclimdb(archive, split)
    grouped: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        grouped.setdefault(label, []).append(text)
    return grouped


def draw(grouped: dict[str, list[str]], counts: dict[str, int], seed: int) -> list[tuple[str, str]]:
    """``counts[label]`` reviews of each label, drawn with ``seed``, in a shuffled order."""
    rng = random.Random(seed)
    rows = [(text, label) for label, n in counts.items() for text in rng.sample(grouped[label], n)]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def build(archive: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train, test = by_label(archive, "train"), by_label(archive, "test")
    write_csv(out / "test.csv", draw(test, dict.fromkeys(test, TEST_PER_CLASS), seed=0))
    for seed in SEEDS:
        for shots in SHOTS:
            write_csv(out / f"few{shots}_seed{seed}.csv", draw(train, dict.fromkeys(train, shots), seed=100 + seed))
        write_csv(out / f"skewed_seed{seed}.csv", draw(train, SKEWED, seed=200 + seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    build(args.archive, args.out)
    print(f"sets written to {args.out}")


if __name__ == "__main__":
    main()
