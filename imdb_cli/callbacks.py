"""The checkpoint and early-stopping callbacks of the shared trainer config (``configs/trainer/default.yaml``).

Lightning's ``ModelCheckpoint`` and ``EarlyStopping`` assume that validation runs before they act:
a fit with ``--trainer.limit_val_batches 0``, ``--data.val_fraction 0``, or a ``--trainer.max_steps``
that ends before the first validation, died with "Early stopping conditioned on metric val_loss
which is not available" and kept no checkpoint. These subclasses step aside until validation has
run (the CLI says so in one line at the end of the fit), and ``last.ckpt`` is written by one
callback only, so that it is always the newest state.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from weakref import proxy

import pytorch_lightning as pl
import torch
from jsonargparse.typing import PositiveInt
from pytorch_lightning import callbacks
from pytorch_lightning.utilities import model_summary

from imdb_cli import staging
from imdb_cli.tasks.balancing import balances_classes


class _InRunDir(callbacks.ModelCheckpoint):
    """Checkpoints in the run's directory (``Trainer.log_dir``) whichever the logger; Lightning's
    own put an MLflow file store's beside its tracking data, outside ``--trainer.default_root_dir``."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.dirpath is None and trainer.loggers:
            self.dirpath = os.path.join(trainer.log_dir, "checkpoints")
        super().setup(trainer, pl_module, stage)


class _AfterValidation(pl.Callback):
    """Knows whether validation has run in this fit (the sanity check does not count)."""

    validated = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated = True
        super().on_validation_end(trainer, pl_module)

    def _waits_for_validation(self, trainer: pl.Trainer) -> bool:
        return not self.validated and self.monitor not in trainer.callback_metrics


class BestCheckpoint(_AfterValidation, _InRunDir):
    """Lightning's ``ModelCheckpoint`` for the best validation score (``best.ckpt`` in the shared
    config); in a fit that never validates it saves nothing, instead of a warning or a crash.
    ``last.ckpt`` is :class:`LastCheckpoint`'s: keep ``save_last`` off here.

    Without a ``monitor`` it keeps the best of the task's own score (``Task.monitor``): ``val_acc``
    for a classifier, ``val_f1_micro`` for a multi-label one, the lowest ``val_mse`` for a regression.
    A classifier trained with ``--model.class_weights`` or ``--data.sampler balanced`` keeps the best
    macro ``val_f1``: on imbalanced data, accuracy rewards the checkpoint that favours the common class.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        task = getattr(pl_module, "task", None)
        if self.monitor is None and task is not None:
            balancing = balances_classes(pl_module, trainer.datamodule)
            self.monitor, mode = (balancing and task.balanced_monitor) or task.monitor
            self.kth_value, self.mode = torch.tensor(torch.inf if mode == "min" else -torch.inf), mode
        super().setup(trainer, pl_module, stage)

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        if self.monitor is not None and self._waits_for_validation(trainer):
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)


class LastCheckpoint(_InRunDir):
    """``last.ckpt``: the newest training state, to resume from with ``--ckpt_path``.

    Written every ``every_n_train_steps`` optimizer steps, at the end of the fit's last epoch and
    of any other after which that many steps have passed since the last save (whether or not
    validation ran), and at the end of the fit, each time replacing the one before: a small set's
    run of a hundred two-step epochs writes it a few times, not a hundred (nor at each epoch after
    early stopping asked to stop while ``min_steps`` keeps the fit going). When another checkpoint
    callback (``best.ckpt``) has just saved the same step, its file is copied instead of the state
    being serialised again (Lightning's ``save_last="link"``, as a copy that a later best leaves alone).

    Args:
        every_n_train_steps: optimizer steps between two saves within an epoch; a crash loses at
            most these.
        dirpath: directory of the checkpoint; by default the run's ``checkpoints/``.
    """

    def __init__(self, every_n_train_steps: PositiveInt = 100, dirpath: str | None = None) -> None:
        super().__init__(
            dirpath=dirpath, save_top_k=0, save_last=True, every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,  # one last.ckpt, replaced: never a last-v1.ckpt beside an old one
        )  # fmt: skip

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ends = trainer.current_epoch + 1 >= trainer.max_epochs
        ends = ends or (trainer.should_stop and trainer.fit_loop._can_stop_early)  # Lightning's own test
        due = ends or trainer.global_step - self._last_global_step_saved >= self._every_n_train_steps
        if due and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.fast_dev_run and not self._should_skip_saving_checkpoint(trainer):  # no epoch end saved it
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        twin = trainer.strategy.broadcast(self._twin(trainer))  # rank 0's file: every rank takes one path
        if twin is None:
            super()._save_checkpoint(trainer, filepath)
            return
        if trainer.is_global_zero:
            fd, tmp = staging.staged_file(Path(filepath))
            os.close(fd)
            shutil.copyfile(twin, tmp)
            staging.replace(tmp, filepath)
        trainer.strategy.barrier()
        self._last_global_step_saved, self._last_checkpoint_saved = trainer.global_step, filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _twin(self, trainer: pl.Trainer) -> str | None:
        """A whole checkpoint another callback wrote at this step, if one did."""
        for other in trainer.checkpoint_callbacks:
            path = getattr(other, "_last_checkpoint_saved", None)
            same_step = getattr(other, "_last_global_step_saved", None) == trainer.global_step
            if other is not self and same_step and path and not other.save_weights_only and os.path.isfile(path):
                return path
        return None


class EarlyStopping(_AfterValidation, callbacks.EarlyStopping):
    """Lightning's ``EarlyStopping``, which checks its metric only once validation has run: a fit
    without validation trains to its end instead of failing."""

    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        if self._waits_for_validation(trainer):
            return
        super()._run_early_stopping_check(trainer)


class ModelSummary(callbacks.ModelSummary):
    """One line at the start of a fit: the encoder and the parameters, trainable and frozen.

    Lightning's table listed the metrics as layers and a FLOPs column of zeros (it counts FLOPs
    only for a model with an example input).
    """

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        params = list(pl_module.parameters())
        total = sum(p.numel() for p in params)
        frozen = total - sum(p.numel() for p in params if p.requires_grad)
        classifier = getattr(pl_module, "classifier", None)  # an auto head: one transformers model
        encoder = type(getattr(pl_module, "encoder", None) or pl_module).__name__
        hp = getattr(pl_module, "hparams", {})
        head = f"{hp.get('pooling', 'cls')}-pooled {'linear' if hp.get('head_hidden') == 0 else 'MLP'} head"
        what = type(classifier).__name__ if classifier is not None else f"{encoder} and {head}"
        count = model_summary.get_human_readable_count
        print(f"model: {what}, {count(total).strip()} parameters ({count(frozen).strip()} frozen)")


class ProgressBar(callbacks.RichProgressBar):
    """Lightning's rich progress bar without the logger's ``v_num``, which says nothing about training."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
