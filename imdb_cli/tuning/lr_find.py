"""`imdb lr_find`: Lightning's learning-rate finder, sized to the data, and its result as JSON and a plot."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from imdb_cli.errors import UserError

MOST_STEPS, FEWEST_STEPS = 100, 20
"""The sweep's length without ``--num_training``: an epoch's batches, within these bounds (the
suggestion skips the first 10 rates and the last)."""


class Estimate:
    """After a few steps, one line: how long the whole sweep will take, and how to shorten it.

    Lightning's finder runs with its own callback alone, so this is called from the model's
    ``on_train_batch_end`` hook (:func:`timed`)."""

    def __init__(self, steps: int, after: int = 3) -> None:
        self.steps, self.after, self.started, self.done = steps, after, time.monotonic(), 0

    def step(self) -> None:
        self.done += 1
        if self.done != self.after:
            return
        per_step = (time.monotonic() - self.started) / self.done
        left = per_step * (self.steps - self.done)
        hint = f"; --num_training {max(FEWEST_STEPS, self.steps // 3)} takes a third" if left > 120 else ""
        more = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"
        print(f"imdb: lr_find: {per_step:.1f} s a step, about {more} more{hint}",
              file=sys.stderr, flush=True)  # fmt: skip


@contextlib.contextmanager
def timed(model: pl.LightningModule, estimate: Estimate):
    """The model's ``on_train_batch_end`` also counts the step for ``estimate``, meanwhile."""
    hook = model.on_train_batch_end

    def counted(outputs, batch, batch_idx: int) -> None:
        hook(outputs, batch, batch_idx)
        if model.trainer.is_global_zero:
            estimate.step()

    model.on_train_batch_end = counted
    try:
        yield
    finally:
        del model.on_train_batch_end


def sized_steps(datamodule, trainer) -> int:
    """An epoch's optimizer steps, between :data:`FEWEST_STEPS` and :data:`MOST_STEPS`: 150 reviews
    in batches of 32 try 20 rates, not 100 (20 passes over the same 150 reviews)."""
    samples = len(datamodule.datasets["train"])
    batches = math.ceil(samples / datamodule.hparams.batch_size) // trainer.world_size
    return max(FEWEST_STEPS, min(MOST_STEPS, batches // trainer.accumulate_grad_batches))


def find_learning_rate(trainer, model, datamodule, min_lr: float, max_lr: float, num_training: int | None,
                       early_stop_threshold: float | None, out: Path) -> float | None:  # fmt: skip
    """Run ``Tuner.lr_find`` and write ``lr_find.json`` and ``lr_find.png`` into ``out``; the suggestion."""
    from pytorch_lightning.tuner import Tuner

    if not min_lr < max_lr:
        raise UserError(f"--min_lr {min_lr} must be below --max_lr {max_lr}")
    if num_training is None:
        datamodule.prepare_data()
        datamodule.setup("fit")
        num_training = sized_steps(datamodule, trainer)
    print(f"imdb: lr_find: {num_training} steps, learning rates {min_lr:g} to {max_lr:g}", file=sys.stderr)
    epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = max(epochs or 1, num_training)  # a small training set runs several epochs
    try:
        with timed(model, Estimate(num_training)):
            finder = Tuner(trainer).lr_find(
                model, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr, num_training=num_training,
                early_stop_threshold=early_stop_threshold, update_attr=False,
            )  # fmt: skip
    finally:
        trainer.fit_loop.max_epochs = epochs
    if finder is None or not finder.results.get("lr"):
        raise UserError("the learning-rate finder tried no rate: the training data gave it no batch")
    suggestion = finder.suggestion()
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "suggestion": suggestion,
        "min_lr": min_lr,
        "max_lr": max_lr,
        "steps": len(finder.results["lr"]),
        "lr": finder.results["lr"],
        "loss": finder.results["loss"],
    }
    (out / "lr_find.json").write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    figure = finder.plot(suggest=suggestion is not None)
    axes = figure.axes[0]
    axes.set_title(f"imdb lr_find: suggested {suggestion:.2e}" if suggestion else "imdb lr_find: no suggestion")
    figure.savefig(out / "lr_find.png", dpi=110, bbox_inches="tight")
    if suggestion is None:
        print(f"imdb: no suggestion: the loss never fell steadily; see {out / 'lr_find.png'}", file=sys.stderr)
    else:
        print(f"suggested learning rate: {suggestion:.3g} ({out / 'lr_find.json'}, {out / 'lr_find.png'})")
    return suggestion
