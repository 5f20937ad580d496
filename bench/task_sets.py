"""Derive the README's task-kind sets from the real aclImdb archive (README, Results: task kinds).

    python bench/task_sets.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz --out runs/sets

writes, from seeded samples of the training and test reviews (never the same review in both):
- ``tags.jsonl`` / ``tags_test.jsonl``: multi-label, a JSON list per review: ``positive`` or
  ``negative``, plus ``extreme`` for a rating of 1 or 10 and ``mixed`` for 4 or 7;
  ``tags.csv``: the same training rows with the labels joined by ``|``;
- ``skewed.csv`` / ``skewed_test.csv``: 95% negative, 5% positive reviews;
- ``pairs.csv`` / ``pairs_test.csv``: the first half of a review and the second half of the same
  review (``same``) or of another (``other``), half of each: a label that neither text gives alone;
- ``scores.parquet`` / ``scores_test.parquet``: each review's star rating as a number.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from imdb_cli.data.sources import read_aclimdb


def sample(archive: Path, split: str, n: int, seed: int) -> list[tuple[str, float]]:
    rated = read_aclimdb(archive, split, ratings=True)
    rows = list(zip(rated.texts, rated.labels, strict=True))
    return random.Random(seed).sample(rows, n)


def tags(rating: float) -> list[str]:
    labels = ["positive" if rating >= 7 else "negative"]
    labels += ["extreme"] if rating in (1, 10) else ["mixed"] if rating in (4, 7) else []
    return labels


def halves(text: str, words: int = 80) -> tuple[str, str]:
    """The first and the second half of a review, each at most ``words`` words (the second its end)."""
    tokens = text.split()
    middle = len(tokens) // 2
    return " ".join(tokens[:middle][:words]), " ".join(tokens[middle:][-words:])


def write_csv(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split, n, suffix in (("train", args.train, ""), ("test", args.test, "_test")):
        reviews = sample(args.archive, split, 4 * n, seed=0)
        first, second = reviews[:n], reviews[n : 2 * n]
        with (args.out / f"tags{suffix}.jsonl").open("w", encoding="utf-8") as f:
            for text, rating in first:
                f.write(json.dumps({"text": text, "label": tags(rating)}) + "\n")
        if not suffix:
            write_csv(args.out / "tags.csv", ["text", "label"], ((t, "|".join(tags(r))) for t, r in first))
        negative = [t for t, r in reviews if r <= 4][: n * 95 // 100]
        positive = [t for t, r in reviews if r >= 7][: n - len(negative)]
        skewed = [(t, "negative") for t in negative] + [(t, "positive") for t in positive]
        random.Random(1).shuffle(skewed)
        write_csv(args.out / f"skewed{suffix}.csv", ["text", "label"], skewed)
        pairs = [
            (halves(a)[0], halves(a if i % 2 == 0 else b)[1], "same" if i % 2 == 0 else "other")
            for i, ((a, _), (b, _)) in enumerate(zip(first, second, strict=True))
        ]
        write_csv(args.out / f"pairs{suffix}.csv", ["premise", "hypothesis", "label"], pairs)
        table = pa.table({"text": [t for t, _ in first], "label": [r for _, r in first]})
        pq.write_table(table, args.out / f"scores{suffix}.parquet")
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")


if __name__ == "__main__":
    main()
