"""Any number of labels per text: one sigmoid per label, binary cross-entropy, a decision threshold per label."""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecisionRecallCurve,
    MultilabelStatScores,
)

from imdb_cli.errors import UserError
from imdb_cli.tasks.base import Task, TaskReport, class_names, sorted_names, unknown_label
from imdb_cli.tasks.single_label import figures, name_legend

TUNING_GRID = 101
"""Thresholds tried per label when tuning: 0, 0.01, ..., 1."""


class MultiLabel(Task):
    """Multi-label classification: a JSON list of labels per row, or a cell split by ``label_separator``.

    Args:
        label_names: the labels, in output order.
        threshold: the probability from which a label is predicted: one for all labels, one per
            label, or ``tune``: at the end of every validation, each label's threshold becomes the
            one of 0, 0.01, ..., 1 with the best F1 on the validation split (the middle one where
            several tie; 0.5 until the first validation), and the validation's metrics are those
            of the new thresholds: the score that picks ``best.ckpt`` is the one its thresholds give.
    """

    name = "multi_label"
    monitor = ("val_f1_micro", "max")
    fields = ("line", "labels", "probs", "embedding")

    def __init__(self, label_names: list[str], threshold: float | list[float] | str = 0.5) -> None:
        super().__init__(label_names)
        self.setting = threshold
        self.tune = threshold == "tune"
        values = thresholds_of(0.5 if self.tune else threshold, label_names)
        self.register_buffer("thresholds", values)
        self.tuner = MultilabelPrecisionRecallCurve(len(label_names), thresholds=TUNING_GRID) if self.tune else None
        self._held: list[tuple[torch.Tensor, torch.Tensor]] = []  # a tuned validation's scores, until its end

    @staticmethod
    def parse(cell, separator: str | None) -> tuple[str, ...]:
        if isinstance(cell, (list, tuple)):
            return tuple(class_names(item) for item in cell)
        if cell is None or str(cell).strip() == "":
            return ()  # a text with none of the labels
        if separator is None:
            return (class_names(cell),)
        pieces = str(cell).split(separator)
        if any(not piece.strip() for piece in pieces):
            raise ValueError(f"label separator {separator!r} leaves an empty label in {str(cell)!r}")
        return tuple(dict.fromkeys(piece.strip() for piece in pieces))

    @staticmethod
    def label_names_of(labels: list[tuple[str, ...]], column: str) -> list[str]:
        names = sorted_names({name for row in labels for name in row})
        if not names:
            raise UserError(f"the training data has no labels in column {column!r}")
        return names

    @staticmethod
    def targets(labels: list[tuple[str, ...]], label_names: list[str], split: str) -> list[list[float]]:
        ids = {name: i for i, name in enumerate(label_names)}
        unknown = sorted({name for row in labels for name in row} - ids.keys())
        if unknown:
            raise unknown_label(split, unknown[0], label_names)
        rows = []
        for row in labels:
            hot = [0.0] * len(label_names)
            for name in row:
                hot[ids[name]] = 1.0
            rows.append(hot)
        return rows

    @staticmethod
    def strata(labels: list[tuple[str, ...]]) -> list[str]:
        """A row's rarest label, so that every label with two or more texts is in both splits."""
        counts = Counter(name for row in labels for name in row)
        return [min(row, key=lambda name: (counts[name], name)) if row else "" for row in labels]

    def fit_to(self, targets: list[list[float]], class_weights, trained_head: bool = False) -> None:
        if class_weights is None:
            return
        n = len(self.label_names)
        if class_weights == "balanced":
            positives = torch.tensor(targets).sum(0)
            if (positives == 0).any():
                missing = self.label_names[int((positives == 0).nonzero()[0])]
                raise UserError(f"--model.class_weights balanced: label {missing!r} has no training texts")
            weights = (len(targets) - positives) / positives  # BCE's pos_weight: negatives per positive
        elif len(class_weights) != n:
            raise UserError(
                f"--model.class_weights gives {len(class_weights)} weights for {n} labels "
                f"({', '.join(self.label_names)}): give one per label, in that order, or balanced"
            )
        else:
            weights = torch.tensor(class_weights, dtype=torch.float)
        self.register_buffer("pos_weight", weights, persistent=False)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, training: bool) -> torch.Tensor:
        weights = getattr(self, "pos_weight", None) if training else None
        weights = None if weights is None else weights.float()
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=weights)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().sigmoid()

    def decide(self, scores: torch.Tensor) -> torch.Tensor:
        """0/1 per label: whether each label's probability reaches its threshold."""
        return (scores >= self.thresholds.float()).long()

    def metrics(self) -> MetricCollection:
        n = len(self.label_names)
        return MetricCollection(
            {
                "f1_micro": MultilabelF1Score(n, average="micro"),
                "f1_macro": MultilabelF1Score(n, average="macro"),
                "exact_match": MultilabelExactMatch(n),
            }
        )

    def update(self, metrics: MetricCollection, scores: torch.Tensor, targets: torch.Tensor) -> None:
        if self.tuner is not None and metrics.prefix == "val_":  # decided at the end, with the tuned thresholds
            self.tuner.update(scores, targets.long())
            self._held.append((scores.detach(), targets.long()))
            return
        metrics.update(self.decide(scores), targets.long())

    def on_validation_end(self, metrics: MetricCollection, tune: bool = True) -> None:
        """Each label's threshold becomes the one with the best validation F1 (``threshold: tune``,
        while fitting); then the validation's metrics are updated with the thresholds in force."""
        if tune and self.tuner is not None and self.tuner.update_called:
            self._tune()
        if self.tuner is not None:
            self.tuner.reset()
        for scores, targets in self._held:
            metrics.update(self.decide(scores), targets)
        self._held.clear()

    def _tune(self) -> None:
        precision, recall, grid = self.tuner.compute()
        f1 = (2 * precision * recall / (precision + recall)).nan_to_num(0.0)[:, : len(grid)]  # 0/0 where none predicted
        chosen = []
        for row in f1:  # the middle of the thresholds that tie for the best F1: the widest margin
            best = (row >= row.max() - 1e-6).nonzero()[:, 0]
            chosen.append(grid[best[len(best) // 2]])
        self.thresholds.copy_(torch.stack(chosen).to(self.thresholds))

    def load_overrides(self, state_dict: dict, saved: dict, prefix: str = "task.") -> None:
        """A ``--model.threshold`` other than the checkpoint's replaces the thresholds it saved
        (which ``tune`` chose on validation data)."""
        if not self.tune and self.setting != saved.get("threshold", 0.5):
            state_dict[f"{prefix}thresholds"] = self.thresholds.clone()

    def record(self, scores: list[float]) -> dict:
        chosen = [name for name, p, t in zip(self.label_names, scores, self.thresholds.tolist(), strict=True) if p >= t]
        return {
            "labels": chosen,
            "probs": {name: round(p, 6) for name, p in zip(self.label_names, scores, strict=True)},
        }

    def csv_columns(self) -> list[str]:
        return ["labels", *(f"prob_{name}" for name in self.label_names)]

    def csv_values(self, record: dict) -> list:
        return ["|".join(record["labels"]), *record["probs"].values()]

    def report(self) -> MultiLabelReport:
        return MultiLabelReport(self)

    def export_meta(self) -> dict:
        return {"thresholds": [round(t, 6) for t in self.thresholds.tolist()]}


def thresholds_of(threshold: float | list[float], label_names: list[str]) -> torch.Tensor:
    if isinstance(threshold, (int, float)):
        return torch.full((len(label_names),), float(threshold))
    if len(threshold) != len(label_names):
        raise UserError(
            f"--model.threshold gives {len(threshold)} thresholds for {len(label_names)} labels "
            f"({', '.join(label_names)}): give one, one per label, or tune"
        )
    return torch.tensor([float(t) for t in threshold])


class MultiLabelReport(TaskReport):
    """Per-label precision, recall, F1 and support at the thresholds in force, and each label's
    precision-recall curve."""

    def __init__(self, task: MultiLabel) -> None:
        super().__init__()
        self.task = [task]  # not a submodule: its buffers stay the model's
        n = len(task.label_names)
        self.counts = MultilabelStatScores(n, average=None)
        self.pr = MultilabelPrecisionRecallCurve(n)

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.counts.update(self.task[0].decide(scores), targets.long())
        self.pr.update(scores, targets.long())

    def compute(self) -> dict:
        task = self.task[0]
        counts = self.counts.compute()  # per label: tp, fp, tn, fn, support
        self.pr.compute()
        per_label = {
            name: figures(float(row[0]), float(row[1]), float(row[3]))
            for name, row in zip(task.label_names, counts.tolist(), strict=True)
        }
        samples = int(counts[0, :4].sum()) if len(counts) else 0
        return {"samples": samples, "thresholds": task.export_meta()["thresholds"], "per_label": per_label}

    def figures(self, subject: str) -> dict:
        fig, ax = self.pr.plot(score=True)
        ax.set_title(f"Precision-recall curve of each label\n({subject})")
        name_legend(fig, self.task[0].label_names)
        return {"precision_recall_curve": fig}
