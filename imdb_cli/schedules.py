"""Learning-rate schedules: the warmup-then-decay schedule of the Hugging Face Trainer, how the
model's configured scheduler becomes the one Lightning steps (its length, its interval), and the
run's length on small data (:class:`RunLength`)."""

from __future__ import annotations

import inspect
import math
import sys
from typing import Literal

import pytorch_lightning as pl
import torch
from jsonargparse.typing import PositiveInt, restricted_number_type
from pytorch_lightning.cli import LRSchedulerCallable
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from imdb_cli.checkpoints import new_run_hint
from imdb_cli.errors import UserError
from imdb_cli.param_groups import scaled_per_group

Share = restricted_number_type("Share", float, [(">=", 0), ("<", 1)], join="and")
"""A share in [0, 1)."""

PLATEAU_MONITOR = "val_loss"
"""The metric ``ReduceLROnPlateau`` watches, once per epoch after validation."""


class WarmupDecay(LRScheduler):
    """Warm the learning rate up linearly from 0 over the first ``warmup_ratio`` of the run, then
    decay it to 0 at the last step: linearly, as the Hugging Face Trainer's default
    (``get_linear_schedule_with_warmup``), or along a cosine. ``--model.scheduler WarmupDecay``.

    Args:
        optimizer: the optimizer (given by the model); its ``lr`` is the peak learning rate.
        warmup_ratio: share of the run's optimizer steps spent warming up.
        decay: shape of the decay after the warmup.
        total_steps: optimizer steps of the whole run; filled in from the trainer when unset.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_ratio: Share = 0.1,
        decay: Literal["linear", "cosine"] = "linear",
        total_steps: PositiveInt | None = None,
    ) -> None:
        if total_steps is None:
            raise ValueError("WarmupDecay needs total_steps (the model fills it in from the trainer)")
        self.total_steps = total_steps
        self.warmup_steps = round(warmup_ratio * total_steps)
        self.decay = decay
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        """The learning rate at ``step`` as a share of the peak."""
        if step < self.warmup_steps:
            return step / self.warmup_steps
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return 1 - progress if self.decay == "linear" else 0.5 * (1 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


def build_scheduler(factory: LRSchedulerCallable, optimizer: torch.optim.Optimizer, total_steps: int) -> dict:
    """Lightning's scheduler config for ``factory(optimizer)``.

    A scheduler whose ``total_steps`` is left unset (OneCycleLR, WarmupDecay) gets the run's
    number of optimizer steps, so that configs need not compute it. The absolute learning rates
    ``max_lr`` and ``base_lr`` (OneCycleLR, CyclicLR) are scaled per parameter group like the
    optimizer's (head learning rate, layer-wise decay); other absolute rates, such as
    CosineAnnealingLR's ``eta_min``, apply to every group as given. Schedulers step every
    optimizer step, but for ``ReduceLROnPlateau``, which steps once per epoch on ``val_loss``.
    """
    keywords = getattr(factory, "keywords", None) or {}  # jsonargparse gives partial(instantiator, class, **init_args)
    target = (getattr(factory, "args", None) or (getattr(factory, "func", factory),))[-1]
    parameters = inspect.signature(target).parameters
    wants_total = "total_steps" in parameters and keywords.get("total_steps") is None and not keywords.get("epochs")
    arguments = {key: scaled_per_group(keywords[key], optimizer) for key in ("max_lr", "base_lr") if key in keywords}
    if wants_total:
        arguments["total_steps"] = total_steps
    scheduler = factory(optimizer, **arguments)
    if isinstance(scheduler, ReduceLROnPlateau):
        monitor = getattr(scheduler, "monitor", PLATEAU_MONITOR)  # LightningCLI's ReduceLROnPlateau names one
        return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor, "strict": False}
    return {"scheduler": scheduler, "interval": "step"}


def check_resumed_length(scheduler, planned: int | None, ckpt_path: str) -> None:
    """A resumed schedule must be as long as this run: OneCycleLR fails at the step past its end,
    deep inside the epoch, and a longer run cannot stretch a schedule that has already annealed."""
    restored = getattr(scheduler, "total_steps", None)
    if planned is None or restored is None or restored == planned:
        return
    raise UserError(
        f"{ckpt_path} continues a {type(scheduler).__name__} schedule of {restored} optimizer steps, but this "
        f"run has {planned}: {new_run_hint(ckpt_path)}"
    )


class RunLength(pl.Callback):
    """Enough optimizer steps on small data: raise the trainer's ``max_epochs`` until the run makes
    at least ``min_steps`` optimizer steps (the trainer's ``min_optimizer_steps``).

    It acts in ``setup``, once the training split is known and before the optimizer and its
    schedule are built, so that the schedule (warm-up included) spans the whole longer run and
    validation and ``best.ckpt`` act at each epoch's end. Early stopping acts only once the run has
    made ``min_steps`` (the trainer's ``min_steps``): a validation split of a few texts would
    otherwise stop a run of a few dozen labels in its first epochs. A set large enough for
    ``max_epochs`` keeps it; ``max_steps`` still ends a run early; a resumed run counts alike.
    """

    def __init__(self, min_steps: int) -> None:
        self.min_steps = min_steps

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        count = getattr(trainer.datamodule, "train_batches", None)
        max_epochs = trainer.fit_loop.max_epochs
        if stage != "fit" or not self.min_steps or count is None or trainer.fast_dev_run or max_epochs < 0:
            return
        trainer.fit_loop.epoch_loop.min_steps = max(trainer.fit_loop.min_steps or 0, self.min_steps)
        batches, limit = count(), trainer.limit_train_batches
        batches = min(batches, int(limit)) if isinstance(limit, int) else int(batches * limit)
        steps = math.ceil(batches / trainer.accumulate_grad_batches)
        epochs = math.ceil(self.min_steps / steps) if steps else 0
        if epochs > max_epochs:
            trainer.fit_loop.max_epochs = epochs
            if trainer.is_global_zero:
                print(
                    f"imdb: {steps} optimizer steps an epoch: {epochs} epochs for at least {self.min_steps} "
                    "steps (--trainer.min_optimizer_steps)",
                    file=sys.stderr,
                )
