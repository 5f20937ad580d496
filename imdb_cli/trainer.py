"""Lightning's Trainer with what the ``imdb`` subcommands add: a file of predictions, a test
report, and ``export``. LightningCLI makes each method's signature the subcommand's options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar

from imdb_cli.export import CLASSIFIER_FILE
from imdb_cli.predict import PredictionWriter
from imdb_cli.report import TestReport, report_dir


class Trainer(pl.Trainer):
    """Lightning's Trainer (the settings below), with imdb's predict, test and export.

    ``predict`` writes records to a file instead of returning them, ``test`` writes a report,
    and ``export`` turns a checkpoint into a directory that needs neither Lightning nor this tool.
    """

    def predict(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        datamodule: pl.LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
        output: str | None = None,
        embeddings: bool = False,
    ):
        """Predict the label of every non-blank line of a file, in input order.

        Writes one record per non-blank line of ``data.predict_file``.

        Args:
            model: the model (given by the CLI).
            dataloaders: unused by the CLI; the datamodule provides the data.
            datamodule: the datamodule (given by the CLI).
            return_predictions: also keep every prediction in memory and return it (off by default).
            ckpt_path: checkpoint to predict with; its settings are the defaults of this run.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
            output: file for the predictions: JSON Lines, or CSV when it ends in ``.csv``;
                standard output when not given.
            embeddings: add each text's [CLS] vector, the one the head classifies, to its record
                (``embedding``, a list; ``emb_0``... columns in CSV), for search and clustering.
        """
        writer = PredictionWriter(output, embeddings)
        self.callbacks.append(writer)
        if output is None:  # records go to stdout: keep progress bars out of it
            self.callbacks = [cb for cb in self.callbacks if not isinstance(cb, ProgressBar)]
        try:
            return super().predict(
                model, dataloaders, datamodule, bool(return_predictions), ckpt_path, weights_only=weights_only
            )
        finally:
            self.callbacks.remove(writer)

    def test(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: pl.LightningDataModule | None = None,
        weights_only: bool | None = None,
        report_dir: str | None = None,
    ):
        """Test a checkpoint or an export, and write a report of its metrics and plots.

        The report: ``test_metrics.json`` and the confusion matrix, ROC and precision-recall
        curves (PNG, and TensorBoard events).

        Args:
            model: the model (given by the CLI).
            dataloaders: unused by the CLI; the datamodule provides the data.
            ckpt_path: checkpoint to test; its settings are the defaults of this run.
            verbose: print the metrics table.
            datamodule: the datamodule (given by the CLI).
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
            report_dir: where the report goes; by default ``RUN/test/NAME/`` for a checkpoint
                ``RUN/checkpoints/NAME.ckpt``, ``DIR/test/`` for ``--model_dir DIR``; without
                either, no report unless this is given.
        """
        directory = Path(report_dir) if report_dir else _default_report_dir(model, ckpt_path)
        if directory is None:
            print("imdb: no test report without a checkpoint or an export: pass --report_dir DIR", file=sys.stderr)
        report = [TestReport(directory, str(ckpt_path) if ckpt_path else None)] if directory else []
        self.callbacks.extend(report)
        try:
            return super().test(model, dataloaders, ckpt_path, verbose, datamodule, weights_only=weights_only)
        finally:
            for callback in report:
                self.callbacks.remove(callback)

    def export(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        ckpt_path: str,
        output_dir: str,
        weights_only: bool | None = None,
    ) -> None:
        """Write a checkpoint's classifier as a directory that plain transformers can read.

        The directory holds safetensors weights, the encoder config, the tokenizer, label names,
        maximum length and truncation, and a model card with the test metrics that ``imdb test``
        recorded for the checkpoint. ``imdb predict --model_dir DIR``
        reads it, and so does plain transformers + torch (README, Export).

        Args:
            model: the model (given by the CLI, with the checkpoint's settings).
            datamodule: the datamodule (given by the CLI, with the checkpoint's settings).
            ckpt_path: the checkpoint to export.
            output_dir: the directory to write; an earlier export there is replaced.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
        """
        from imdb_cli.export import export

        path = export(model, datamodule, ckpt_path, output_dir, weights_only)
        print(f"exported {ckpt_path} to {path}")


def _default_report_dir(model: pl.LightningModule | None, ckpt_path: str | None) -> Path | None:
    """Beside the checkpoint's run, or inside the exported directory the model was read from."""
    if ckpt_path and Path(ckpt_path).is_file():
        return report_dir(ckpt_path)
    encoder = Path(str(getattr(model, "hparams", {}).get("encoder", ""))).expanduser()
    if (encoder / CLASSIFIER_FILE).is_file():
        return encoder / "test"
    return None
