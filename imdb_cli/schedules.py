"""Learning-rate schedules: the warmup-then-decay schedule of the Hugging Face Trainer, and how the
model's configured scheduler becomes the one Lightning steps (its length, its interval)."""

from __future__ import annotations

import inspect
import math
from typing import Literal

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
