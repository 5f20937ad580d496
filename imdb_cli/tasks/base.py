"""What every kind of target provides: the seam between one task kind and the rest of the tool.

A task reads label cells into labels, turns labels into training targets, sizes the head, gives the
loss and metrics, turns logits into scores, scores into prediction records, and collects the test
report. It is an ``nn.Module`` held by the model (``model.task``), so that what it learns from the
data (a regression's target scale, a multi-label's tuned thresholds) lives in its buffers and travels
in checkpoints with the weights. The data side (``parse``, ``label_names_of``, ``targets``,
``strata``) needs no instance: the DataModule calls it on the class.
"""

from __future__ import annotations

import re
from typing import ClassVar

import torch
from torch import nn
from torchmetrics import MetricCollection

from imdb_cli.errors import UserError

Label = str | tuple[str, ...] | float
"""A parsed label: a class name, a set of class names (multi-label), or a number (regression)."""


class Task(nn.Module):
    """One kind of target. Subclasses set the class attributes and implement every method."""

    name: ClassVar[str]
    """The ``--data.task`` value, and what ``model.task`` records."""
    monitor: ClassVar[tuple[str, str]]
    """The validation metric ``best.ckpt`` keeps, and ``max`` or ``min``."""
    balanced_monitor: ClassVar[tuple[str, str] | None] = None
    """What ``best.ckpt`` keeps instead when training balances the classes (class weights, a balanced
    sampler): a score that predicting the common class everywhere does not win."""
    fields: ClassVar[tuple[str, ...]]
    """The fields of a prediction record, which a column copied from the input must not replace."""

    def __init__(self, label_names: list[str]) -> None:
        super().__init__()
        self.label_names = list(label_names)

    # The data side: labels as read, and the targets the model trains on.

    @staticmethod
    def parse(cell, separator: str | None) -> Label:
        """One table cell as a label; a ``ValueError`` says what is wrong with it."""
        raise NotImplementedError

    @staticmethod
    def label_names_of(labels: list[Label], column: str) -> list[str]:
        """The names of the model's outputs, from the training labels."""
        raise NotImplementedError

    @staticmethod
    def targets(labels: list[Label], label_names: list[str], split: str) -> list:
        """Labels as the model's targets; a label the model does not know is a ``UserError``."""
        raise NotImplementedError

    @staticmethod
    def strata(labels: list[Label]) -> list:
        """The key each text's stratum is chosen by, in the seeded train/validation split."""
        raise NotImplementedError

    # The model side.

    @property
    def out_features(self) -> int:
        return len(self.label_names)

    def fit_to(self, targets: list, class_weights, trained_head: bool = False) -> None:
        """What the task takes from the training targets before training: class weights, scales."""

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, training: bool) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """What the model outputs for a text: probabilities, or the predicted value."""
        raise NotImplementedError

    def metrics(self) -> MetricCollection:
        """Validation and test metrics, updated with :meth:`update`."""
        raise NotImplementedError

    def update(self, metrics: MetricCollection, scores: torch.Tensor, targets: torch.Tensor) -> None:
        metrics.update(scores, targets)

    def balance_decisions(self) -> None:
        """Called before fitting when training balances the classes (class weights, a balanced
        sampler): a classifier then shifts its decisions on validation data."""

    def on_validation_end(self, metrics: MetricCollection, tune: bool = True) -> torch.Tensor | None:
        """After each validation pass, before its ``metrics`` are computed: settings chosen on
        validation data (``tune``: while fitting, not in the sanity check); a shift to add to the
        output layer's bias, or ``None``."""

    def load_overrides(self, state_dict: dict, saved: dict, prefix: str = "task.") -> None:
        """Change a checkpoint's ``state_dict`` where this run's settings replace what it saved;
        ``saved`` is the checkpoint's model settings."""

    def record(self, scores: list[float]) -> dict:
        """A prediction record's fields (``line`` and copied columns aside) from one text's scores."""
        raise NotImplementedError

    def csv_columns(self) -> list[str]:
        """The CSV header for :meth:`record`'s fields."""
        raise NotImplementedError

    def csv_values(self, record: dict) -> list:
        raise NotImplementedError

    def report(self) -> TaskReport:
        """A fresh collector of the test report's figures."""
        raise NotImplementedError

    def export_output_layer(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's output layer as an export holds it: its outputs are what :meth:`scores` reads
        once the export's ``problem_type`` applies softmax, sigmoid or nothing."""
        return weight, bias

    def export_meta(self) -> dict:
        """What ``classifier.json`` records for this task, beyond the label names."""
        return {}


class TaskReport(nn.Module):
    """The test-report half of a task: collects scores and targets over all ranks, then gives what
    ``test_metrics.json`` adds and the figures (:class:`imdb_cli.report.TestReport` writes them)."""

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> dict:
        """The report's own fields; every rank calls it (the metrics gather the ranks' states)."""
        raise NotImplementedError

    def figures(self, subject: str) -> dict:
        """Matplotlib figures by file name, drawn on the Agg backend."""
        raise NotImplementedError


def sorted_names(names: set[str]) -> list[str]:
    """Label names in a stable order: numerically if all are integers, else alphabetically."""
    if all(re.fullmatch(r"-?\d+", name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


def class_names(cell) -> str:
    """A cell as one class name: stripped, never empty."""
    if cell is None or isinstance(cell, (list, dict)) or str(cell).strip() == "":
        raise ValueError("empty label" if not isinstance(cell, (list, dict)) else "label is not one name")
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # Parquet's 1.0 is class "1", as in a CSV
    return str(cell).strip()


def unknown_label(split: str, label: str, label_names: list[str]) -> UserError:
    return UserError(f"{split} data has label {label!r}, not one of the model's: {', '.join(label_names)}")
