"""One label per text: softmax over the classes, cross-entropy, accuracy, macro F1 and AUROC."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import CatMetric
from torchmetrics.classification import (
    BinaryPrecisionRecallCurve,
    BinaryROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecisionRecallCurve,
    MulticlassROC,
)

from imdb_cli.errors import UserError
from imdb_cli.tasks.balancing import balanced_shift
from imdb_cli.tasks.base import Task, TaskReport, class_names, sorted_names, unknown_label


class SingleLabel(Task):
    """Classification into exactly one of two or more classes (IMDB's negative and positive)."""

    name = "classification"
    monitor = ("val_acc", "max")
    balanced_monitor = ("val_f1", "max")  # macro: each class counts alike
    fields = ("line", "label", "score", "probs", "embedding")

    @staticmethod
    def parse(cell, separator: str | None) -> str | tuple[str, ...]:
        """A class name; a JSON list is a set of names, which makes the data multi-label."""
        if isinstance(cell, (list, tuple)):
            return tuple(class_names(item) for item in cell)
        return class_names(cell)

    @staticmethod
    def label_names_of(labels: list[str], column: str) -> list[str]:
        names = sorted_names(set(labels))
        if len(names) < 2:
            raise UserError(f"the training data has one label ({names[0]!r}): a classifier needs two or more labels")
        return names

    @staticmethod
    def targets(labels: list[str], label_names: list[str], split: str) -> list[int]:
        ids = {name: i for i, name in enumerate(label_names)}
        unknown = sorted(set(labels) - ids.keys())
        if unknown:
            raise unknown_label(split, unknown[0], label_names)
        return [ids[label] for label in labels]

    @staticmethod
    def strata(labels: list[str]) -> list[str]:
        return labels

    def fit_to(self, targets: list[int], class_weights, trained_head: bool = False) -> None:
        if class_weights is not None:
            weights = balanced_weights(class_weights, targets, self.label_names)
            self.register_buffer("loss_weights", weights, persistent=False)

    def balance_decisions(self) -> None:
        """While fitting with class weights or a balanced sampler: at the end of each validation the
        logits are shifted so that every class of the validation split is recalled alike
        (:func:`imdb_cli.tasks.balancing.balanced_shift`), and the validation's metrics are those of
        the shifted decisions, the ones ``best.ckpt`` keeps."""
        self.held_scores, self.held_targets = CatMetric(), CatMetric()  # gathered over the ranks

    def update(self, metrics: MetricCollection, scores: torch.Tensor, targets: torch.Tensor) -> None:
        if metrics.prefix == "val_" and hasattr(self, "held_scores"):  # decided at the end, shifted
            self.held_scores.update(scores.detach().float())
            self.held_targets.update(targets.float())
            return
        metrics.update(scores, targets)

    def on_validation_end(self, metrics: MetricCollection, tune: bool = True) -> torch.Tensor | None:
        """The shift of the logits :meth:`balance_decisions` chose (``None`` without it); the
        validation's metrics updated with the shifted scores."""
        held = getattr(self, "held_scores", None)
        if held is None or not held.update_called:
            return None
        scores, targets = held.compute().view(-1, len(self.label_names)), self.held_targets.compute().long()
        held.reset()
        self.held_targets.reset()
        log_probs = scores.clamp(min=1e-30).log()
        shift = balanced_shift(log_probs, targets) if tune else torch.zeros(len(self.label_names))
        metrics.update((log_probs + shift.to(scores)).softmax(-1), targets)  # every rank holds all texts
        return shift

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, training: bool) -> torch.Tensor:
        weights = getattr(self, "loss_weights", None) if training else None
        weights = None if weights is None else weights.float()  # FSDP casts buffers to bf16
        return nn.functional.cross_entropy(logits.float(), targets, weight=weights)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().softmax(-1)

    def metrics(self) -> MetricCollection:
        n = len(self.label_names)
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(n, average="micro"),
                "f1": MulticlassF1Score(n, average="macro"),
                "auroc": MulticlassAUROC(n),
            }
        )

    def record(self, scores: list[float]) -> dict:
        best = max(range(len(scores)), key=scores.__getitem__)
        probs = {name: round(p, 6) for name, p in zip(self.label_names, scores, strict=True)}
        return {"label": self.label_names[best], "score": round(scores[best], 6), "probs": probs}

    def csv_columns(self) -> list[str]:
        return ["label", "score", *(f"prob_{name}" for name in self.label_names)]

    def csv_values(self, record: dict) -> list:
        return [record["label"], record["score"], *record["probs"].values()]

    def report(self) -> SingleLabelReport:
        return SingleLabelReport(self.label_names)


def balanced_weights(given: str | list[float], targets: list[int], label_names: list[str]) -> torch.Tensor:
    """The loss weight of each class: ``balanced`` gives ``n / (classes * count)``, scikit-learn's
    ``compute_class_weight``; a list is taken as it is, once its length is checked."""
    if given != "balanced":
        if len(given) != len(label_names):
            raise UserError(
                f"--model.class_weights gives {len(given)} weights for {len(label_names)} labels "
                f"({', '.join(label_names)}): give one per label, in that order, or balanced"
            )
        return torch.tensor(given, dtype=torch.float)
    counts = torch.bincount(torch.as_tensor(targets, dtype=torch.long), minlength=len(label_names)).float()
    if (counts == 0).any():
        missing = label_names[int((counts == 0).nonzero()[0])]
        raise UserError(f"--model.class_weights balanced: label {missing!r} has no training texts")
    return counts.sum() / (len(label_names) * counts)


class SingleLabelReport(TaskReport):
    """The confusion matrix, per-class precision/recall/F1, and ROC and precision-recall curves: with
    two labels those of the second (``positive`` on IMDB), with more one per label against the rest."""

    def __init__(self, label_names: list[str]) -> None:
        super().__init__()
        self.label_names = label_names
        n = len(label_names)
        self.binary = n == 2
        self.confusion = MulticlassConfusionMatrix(n)
        self.roc = BinaryROC() if self.binary else MulticlassROC(n)
        self.pr = BinaryPrecisionRecallCurve() if self.binary else MulticlassPrecisionRecallCurve(n)

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.confusion.update(scores, targets)
        curve_scores = scores[:, 1] if self.binary else scores
        self.roc.update(curve_scores, targets)
        self.pr.update(curve_scores, targets)

    def compute(self) -> dict:
        self._confusion = self.confusion.compute()
        self.roc.compute()  # cached for plot()
        self.pr.compute()
        return {
            "samples": int(self._confusion.sum()),
            "confusion_matrix": self._confusion.tolist(),
            "per_class": per_class(self._confusion, self.label_names),
        }

    def figures(self, subject: str) -> dict:
        figures = {}
        fig, ax = self.confusion.plot(val=self._confusion.cpu(), labels=self.label_names)
        ax.set_title(f"Confusion matrix ({subject})")
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        figures["confusion_matrix"] = fig
        positive = f" of {self.label_names[1]!r}" if self.binary else ", each label against the rest"
        for name, metric, title in (
            ("roc_curve", self.roc, "ROC curve"),
            ("precision_recall_curve", self.pr, "Precision-recall curve"),
        ):
            kwargs = {} if self.binary or name != "roc_curve" else {"labels": self.label_names}
            fig, ax = metric.plot(score=True, **kwargs)  # the area under the curve in the legend
            ax.set_title(f"{title}{positive}\n({subject})")
            figures[name] = fig
        if not self.binary:
            name_legend(figures["precision_recall_curve"], self.label_names)
        return figures


def per_class(confusion: torch.Tensor, label_names: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows: true labels):
    on imbalanced data accuracy hides a class the model never predicts; these do not."""
    confusion = confusion.double()
    hits, true, predicted = confusion.diag(), confusion.sum(1), confusion.sum(0)
    return {
        name: figures(float(hits[i]), float(predicted[i] - hits[i]), float(true[i] - hits[i]))
        for i, name in enumerate(label_names)
    }


def figures(tp: float, fp: float, fn: float) -> dict:
    """Precision, recall, F1 and support from the counts of true and false positives and false negatives."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6), "support": int(tp + fn)}


def name_legend(figure, label_names: list[str]) -> None:
    """torchmetrics labels multiclass and multilabel curves by index; name them instead."""
    ax = figure.axes[0]
    handles, texts = ax.get_legend_handles_labels()
    renamed = [text.replace(str(i), label_names[i], 1) for i, text in enumerate(texts)]
    ax.legend(handles, renamed)
