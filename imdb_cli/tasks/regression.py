"""A number per text: one output, mean squared error on standardised targets; MSE, MAE, Pearson, Spearman."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics import CatMetric, MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, SpearmanCorrCoef

from imdb_cli.errors import UserError
from imdb_cli.tasks.base import Task, TaskReport

STRATA = 10
"""The train/validation split is stratified by the target's value where it takes at most this many
values (aclImdb's eight ratings), else by its deciles."""


class Regression(Task):
    """Regression on one numeric target (on aclImdb, the review's 1-10 star rating).

    The head learns the target standardised by the training split's mean and standard deviation,
    so that a rating of 1-10 and a price in the thousands train alike; the scale is kept in the
    checkpoint, and folded into the head's last layer by ``imdb export``.
    """

    name = "regression"
    monitor = ("val_mse", "min")
    fields = ("line", "value", "embedding")

    def __init__(self, label_names: list[str]) -> None:
        super().__init__(label_names)
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    @staticmethod
    def parse(cell, separator: str | None) -> float:
        if isinstance(cell, bool) or cell is None or isinstance(cell, (list, dict)):
            raise ValueError(f"target {cell!r} is not a number")
        try:
            value = float(str(cell).strip())
        except ValueError:
            raise ValueError(f"target {str(cell).strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"target {cell!r} is not a finite number")
        return value

    @staticmethod
    def label_names_of(labels: list[float], column: str) -> list[str]:
        if len(set(labels)) < 2:
            raise UserError(f"every training target is {labels[0]}: regression needs targets that vary")
        return [column]

    @staticmethod
    def targets(labels: list[float], label_names: list[str], split: str) -> list[float]:
        return [float(value) for value in labels]

    @staticmethod
    def strata(labels: list[float]) -> list[int]:
        """The target's value, or its decile, so that validation spans the whole range."""
        if len(set(labels)) <= STRATA:
            return labels
        order = sorted(range(len(labels)), key=labels.__getitem__)
        strata = [0] * len(labels)
        for rank, index in enumerate(order):
            strata[index] = rank * STRATA // len(labels)
        return strata

    @property
    def out_features(self) -> int:
        return 1

    def fit_to(self, targets: list[float], class_weights, trained_head: bool = False) -> None:
        """The training split's mean and standard deviation; a head trained before (an export's)
        already outputs the target's own scale."""
        if class_weights is not None:
            raise UserError("--model.class_weights weighs classes: a regression has none")
        if not trained_head:
            values = torch.tensor(targets, dtype=torch.float64)
            self.target_mean.fill_(float(values.mean()))
            self.target_std.fill_(float(values.std()) or 1.0)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, training: bool) -> torch.Tensor:
        standard = (targets.float() - self.target_mean.float()) / self.target_std.float()
        return nn.functional.mse_loss(logits.float()[:, 0], standard)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()[:, 0] * self.target_std.float() + self.target_mean.float()

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "pearson": PearsonCorrCoef(),
             "spearman": SpearmanCorrCoef()}
        )  # fmt: skip

    def update(self, metrics: MetricCollection, scores: torch.Tensor, targets: torch.Tensor) -> None:
        metrics.update(scores, targets.float())

    def record(self, scores: float) -> dict:
        return {"value": round(scores, 6)}

    def csv_columns(self) -> list[str]:
        return ["value"]

    def csv_values(self, record: dict) -> list:
        return [record["value"]]

    def report(self) -> RegressionReport:
        return RegressionReport(self.label_names[0])

    def export_output_layer(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The target scale folded into the output layer: the export outputs the target itself."""
        std, mean = self.target_std.float(), self.target_mean.float()
        return (weight.float() * std).to(weight.dtype), (bias.float() * std + mean).to(bias.dtype)


class RegressionReport(TaskReport):
    """Every prediction against its target, as a scatter plot, and the error's quantiles."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.predicted = CatMetric()
        self.true = CatMetric()

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.predicted.update(scores)
        self.true.update(targets.float())

    def compute(self) -> dict:
        self._predicted, self._true = self.predicted.compute().cpu(), self.true.compute().cpu()
        error = (self._predicted - self._true).abs()
        quantiles = torch.quantile(error, torch.tensor([0.5, 0.9, 0.99])).tolist()
        return {
            "samples": len(self._true),
            "target": self.target,
            "absolute_error": {q: round(v, 6) for q, v in zip(("median", "p90", "p99"), quantiles, strict=True)},
        }

    def figures(self, subject: str) -> dict:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.scatter(self._true, self._predicted, s=6, alpha=0.3)
        low, high = (
            float(min(self._true.min(), self._predicted.min())),
            float(max(self._true.max(), self._predicted.max())),
        )
        ax.plot([low, high], [low, high], color="grey", linewidth=1, label="predicted = true")
        ax.set_xlabel(f"true {self.target}")
        ax.set_ylabel(f"predicted {self.target}")
        ax.set_title(f"Predicted against true {self.target}\n({subject})")
        ax.legend()
        return {"predicted_vs_true": fig}
