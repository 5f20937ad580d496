"""The floor under `imdb`'s speed: the same model on the same batches in a plain PyTorch loop.

    python bench/raw_loop.py --archive aclImdb_v1.tar.gz --encoder DIR [--samples 4000]

Batches come from :class:`IMDBDataModule` (length-grouped training batches, sorted evaluation
batches, 512 tokens, batch 16) and go through :class:`SentimentClassifier` with bf16 autocast on
the GPU (fp32 on a CPU), with no Trainer around them. Timed separately:
- ``forward``: evaluation forward passes alone;
- ``evaluate``: the model's own evaluation step (forward, loss, metric updates);
- ``train``: forward, backward and an Adam step.
What `imdb` adds per batch is its samples/s here against `bench/gpu_profile.py`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from imdb_cli.data.datamodule import IMDBDataModule
from imdb_cli.model import SentimentClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record


def timed(batches, step, device) -> dict:
    """Samples per second of ``step`` over ``batches`` moved to ``device``, after two warm-up batches."""
    batches = [{k: v.to(device, non_blocking=True) for k, v in b.items()} for b in batches]
    for batch in batches[:2]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    samples = sum(len(b["labels"]) for b in batches[2:])
    return {"samples": samples, "seconds": round(seconds, 2), "samples_per_s": round(samples / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", required=True)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--samples", type=int, default=4000, help="training and test reviews to time")
    parser.add_argument("--out", help="the result file (default bench/results/raw-loop.json)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = IMDBDataModule(
        source=args.archive, tokenizer=args.encoder, max_train_samples=args.samples,
        max_test_samples=args.samples, max_val_samples=16, cache_dir=tempfile.mkdtemp(),
    )  # fmt: skip
    data.setup("fit")
    data.setup("test")
    model = SentimentClassifier(encoder=args.encoder)
    model.configure_model()
    model.to(device)
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}

    model.eval()
    test_batches = list(data.test_dataloader())
    with torch.no_grad(), autocast:
        results["forward"] = timed(test_batches, lambda b: model(b["input_ids"], b["attention_mask"]), device)
        results["evaluate"] = timed(test_batches, lambda b: model._evaluate(b, "test"), device)

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5)

    def train_step(batch: dict) -> None:
        with autocast:
            loss, _ = model._loss_and_logits(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    results["train"] = timed(list(data.train_dataloader()), train_step, device)
    print(json.dumps(results))
    record.write("raw-loop", results, args.out)


if __name__ == "__main__":
    main()
