"""What `imdb test` leaves behind: the metrics as JSON, and the confusion matrix, ROC and
precision-recall curves as PNG files, and all of them as TensorBoard events."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torchmetrics.classification import (
    BinaryPrecisionRecallCurve,
    BinaryROC,
    MulticlassConfusionMatrix,
    MulticlassPrecisionRecallCurve,
    MulticlassROC,
)

METRICS_FILE = "test_metrics.json"
FIGURES = ("confusion_matrix", "roc_curve", "precision_recall_curve")


def report_dir(ckpt_path: str | Path) -> Path:
    """Where the test report of a checkpoint goes: ``RUN/test/NAME/`` for ``RUN/checkpoints/NAME.ckpt``,
    else ``test/NAME/`` beside the checkpoint file."""
    ckpt = Path(ckpt_path)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / "test" / ckpt.stem


class TestReport(Callback):
    """Collects every test prediction (over all ranks) and, once testing ends, writes into ``directory``:

    - ``test_metrics.json``: the logged test metrics, the number of texts, the label names and the
      confusion matrix (rows: true label, columns: predicted label);
    - ``confusion_matrix.png``, ``roc_curve.png``, ``precision_recall_curve.png``: with two
      labels the curves are those of the second label (``positive`` on IMDB); with more, one
      curve per label, one against the rest;
    - TensorBoard events of the metrics and the three figures.
    """

    __test__ = False  # not a pytest class, despite its name

    def __init__(self, directory: str | Path, ckpt_path: str | None = None) -> None:
        self.directory = Path(directory)
        self.ckpt_path = ckpt_path

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.label_names = list(pl_module.label_names)
        n = len(self.label_names)
        self.binary = n == 2
        self.confusion = MulticlassConfusionMatrix(n)
        self.roc = BinaryROC() if self.binary else MulticlassROC(n)
        self.pr = BinaryPrecisionRecallCurve() if self.binary else MulticlassPrecisionRecallCurve(n)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for metric in (self.confusion, self.roc, self.pr):
            metric.reset()
            metric.to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        probs, labels = outputs["probs"], outputs["labels"]
        self.confusion.update(probs, labels)
        scores = probs[:, 1] if self.binary else probs
        self.roc.update(scores, labels)
        self.pr.update(scores, labels)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Every rank takes part: compute() gathers all ranks' states, and caches the result for plot().
        confusion = self.confusion.compute()
        self.roc.compute()
        self.pr.compute()
        if not trainer.is_global_zero:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        metrics = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("test_")}
        report = {
            "checkpoint": self.ckpt_path,
            "samples": int(confusion.sum()),
            "label_names": self.label_names,
            "metrics": dict(sorted(metrics.items())),
            "confusion_matrix": confusion.tolist(),
            "per_class": per_class(confusion, self.label_names),
            "data": _data_settings(getattr(trainer, "datamodule", None)),
        }
        (self.directory / METRICS_FILE).write_text(json.dumps(report, indent=1) + "\n")
        figures = self._figures(confusion, report)
        self._log_to_tensorboard(figures, metrics, trainer.global_step)
        import matplotlib.pyplot as plt

        for name, figure in figures.items():
            figure.savefig(self.directory / f"{name}.png", dpi=120, bbox_inches="tight")
            plt.close(figure)
        print(f"test report: {self.directory}/{{{METRICS_FILE},{','.join(f + '.png' for f in FIGURES)}}}")

    def _log_to_tensorboard(self, figures: dict, metrics: dict[str, float], step: int) -> None:
        """The metrics and figures as TensorBoard events in the report's own directory, so that
        ``tensorboard --logdir RUN`` shows them beside the run that made the checkpoint."""
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(self.directory) as writer:
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)
            for name, figure in figures.items():
                writer.add_figure(f"test/{name}", figure, step, close=False)

    def _figures(self, confusion: torch.Tensor, report: dict) -> dict:
        """The three figures, drawn by torchmetrics' own ``plot`` methods on matplotlib's Agg backend."""
        import matplotlib

        matplotlib.use("Agg")
        subject = f"{report['samples']} test texts"
        if self.ckpt_path:
            subject += f", {Path(self.ckpt_path).name}"
        figures = {}
        fig, ax = self.confusion.plot(val=confusion.cpu(), labels=self.label_names)
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
            _name_legend(figures["precision_recall_curve"], self.label_names)
        return figures


def per_class(confusion: torch.Tensor, label_names: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows: true labels):
    on imbalanced data accuracy hides a class the model never predicts; these do not."""
    confusion = confusion.double()
    hits, true, predicted = confusion.diag(), confusion.sum(1), confusion.sum(0)
    figures = {}
    for i, name in enumerate(label_names):
        precision = float(hits[i] / predicted[i]) if predicted[i] else 0.0
        recall = float(hits[i] / true[i]) if true[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        figures[name] = {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6)}
        figures[name]["support"] = int(true[i])
    return figures


def _data_settings(datamodule) -> dict | None:
    """What was tested on: the test table or the aclImdb source (never both), its subset and truncation."""
    hparams = getattr(datamodule, "hparams", None)
    if not hparams:
        return None
    where = ("test_file",) if getattr(datamodule, "uses_tables", False) else ("source",)
    keys = (*where, "max_test_samples", "max_length", "truncation", "head_tokens")
    return {key: hparams.get(key) for key in keys}


def _name_legend(figure, label_names: list[str]) -> None:
    """torchmetrics labels multiclass precision-recall curves by index; name them instead."""
    ax = figure.axes[0]
    handles, texts = ax.get_legend_handles_labels()
    renamed = [text.replace(str(i), label_names[i], 1) for i, text in enumerate(texts)]
    ax.legend(handles, renamed)
