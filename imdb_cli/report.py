"""What `imdb test` leaves behind: the metrics as JSON, the task's figures as PNG files (for a
classifier the confusion matrix, ROC and precision-recall curves), all of them as TensorBoard events,
and to the run's MLflow or W&B logger where the test has one."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

METRICS_FILE = "test_metrics.json"


def report_dir(ckpt_path: str | Path) -> Path:
    """Where the test report of a checkpoint goes: ``RUN/test/NAME/`` for ``RUN/checkpoints/NAME.ckpt``,
    else ``test/NAME/`` beside the checkpoint file."""
    ckpt = Path(ckpt_path)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / "test" / ckpt.stem


class TestReport(Callback):
    """Collects every test prediction (over all ranks) and, once testing ends, writes into ``directory``:

    - ``test_metrics.json``: the logged test metrics, the number of texts, the label names, and what
      the task adds: for a classifier the confusion matrix (rows: true label, columns: predicted)
      and per-class precision, recall, F1 and support; for a multi-label one the same per label and
      the thresholds; for a regression the quantiles of the absolute error;
    - the task's figures as PNG: ``confusion_matrix``, ``roc_curve`` and ``precision_recall_curve``
      for a classifier (with two labels, the curves of the second, ``positive`` on IMDB),
      ``precision_recall_curve`` per label for multi-label, ``predicted_vs_true`` for a regression;
    - TensorBoard events of the metrics and the figures.
    """

    __test__ = False  # not a pytest class, despite its name

    def __init__(self, directory: str | Path, ckpt_path: str | None = None) -> None:
        self.directory = Path(directory)
        self.ckpt_path = ckpt_path

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.label_names = list(pl_module.label_names)
        self.task = pl_module.task.name

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.collector = pl_module.task.report().to(pl_module.device)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.collector.update(outputs["scores"], outputs["labels"])

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        found = self.collector.compute()  # every rank takes part: the metrics gather all ranks' states
        if not trainer.is_global_zero:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        metrics = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("test_")}
        report = {
            "checkpoint": self.ckpt_path,
            "task": self.task,
            "samples": found.pop("samples"),
            "label_names": self.label_names,
            "metrics": dict(sorted(metrics.items())),
            **found,
            "data": _data_settings(getattr(trainer, "datamodule", None)),
        }
        (self.directory / METRICS_FILE).write_text(json.dumps(report, indent=1) + "\n")
        import matplotlib

        matplotlib.use("Agg")
        subject = f"{report['samples']} test texts"
        if self.ckpt_path:
            subject += f", {Path(self.ckpt_path).name}"
        figures = self.collector.figures(subject)
        self._log_to_tensorboard(figures, metrics, trainer.global_step)
        import matplotlib.pyplot as plt

        for name, figure in figures.items():
            figure.savefig(self.directory / f"{name}.png", dpi=120, bbox_inches="tight")
            plt.close(figure)
        self._send_to_loggers(trainer, list(figures))
        print(f"test report: {self.directory}/{{{METRICS_FILE},{','.join(f + '.png' for f in figures)}}}")

    def _log_to_tensorboard(self, figures: dict, metrics: dict[str, float], step: int) -> None:
        """The metrics and figures as TensorBoard events in the report's own directory, so that
        ``tensorboard --logdir RUN`` shows them beside the run that made the checkpoint."""
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(self.directory) as writer:
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)
            for name, figure in figures.items():
                writer.add_figure(f"test/{name}", figure, step, close=False)

    def _send_to_loggers(self, trainer: pl.Trainer, figures: list[str]) -> None:
        """The report's files to the run's MLflow or W&B logger, beside the test metrics that
        Lightning logged there (a CSV logger takes metrics only; TensorBoard has the events above)."""
        from pytorch_lightning.loggers import MLFlowLogger, WandbLogger

        images = [str(self.directory / f"{name}.png") for name in figures]
        for logger in getattr(trainer, "loggers", []):
            if isinstance(logger, MLFlowLogger):
                for path in [str(self.directory / METRICS_FILE), *images]:
                    logger.experiment.log_artifact(logger.run_id, path, artifact_path="test_report")
            elif isinstance(logger, WandbLogger):
                logger.log_image("test_report", images=images, caption=figures)
                logger.experiment.save(str(self.directory / METRICS_FILE), base_path=str(self.directory))


def _data_settings(datamodule) -> dict | None:
    """What was tested on: the test table or the aclImdb source (never both), its subset and truncation."""
    hparams = getattr(datamodule, "hparams", None)
    if not hparams:
        return None
    where = ("test_file",) if getattr(datamodule, "uses_tables", False) else ("source",)
    keys = (*where, "max_test_samples", "max_length", "truncation", "head_tokens")
    return {key: hparams.get(key) for key in keys}
