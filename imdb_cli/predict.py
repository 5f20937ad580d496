"""Writing predictions: a callback that streams one record per input line to JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, ProgressBar

from imdb_cli.errors import UserError


class PredictionWriter(BasePredictionWriter):
    """Stream predictions as they are made, in input order, so that memory does not grow with the input.

    Each record is ``{"line", "label", "score", "probs"}``: the 1-based input line, the most
    probable label, its probability, and every label's probability. A path ending in ``.csv``
    gives CSV, any other path JSON Lines, and no path standard output. A file is written beside
    its destination and moved into place only when complete, so an existing file survives a
    failed run.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self.count = 0

    @property
    def is_csv(self) -> bool:
        return self.output is not None and self.output.lower().endswith(".csv")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.count = 0
        self.pending: dict[int, tuple[int, list[float]]] = {}
        self.label_names = pl_module.label_names
        if self.output is None:
            self._tmp, self.stream = None, sys.stdout
        else:
            dest = Path(self.output)
            if dest.is_dir():
                raise UserError(f"--output {self.output} is a directory")
            if not dest.parent.is_dir():
                raise UserError(f"--output {self.output}: directory {dest.parent} does not exist")
            fd, self._tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
            self.stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
        if self.is_csv:
            self.csv = csv.writer(self.stream)
            self.csv.writerow(["line", "label", "score", *(f"prob_{name}" for name in self.label_names)])

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        """Hold records that arrive early (batches are sorted by length) until their turn comes."""
        rows = zip(prediction["index"].tolist(), prediction["line"].tolist(), prediction["probs"].tolist(), strict=True)
        for index, line, probs in rows:
            self.pending[index] = (line, probs)
        while self.count in self.pending:
            self.write(*self.pending.pop(self.count))

    def write(self, line: int, probs: list[float]) -> None:
        best = max(range(len(probs)), key=probs.__getitem__)
        label, score = self.label_names[best], round(probs[best], 6)
        if self.is_csv:
            self.csv.writerow([line, label, score, *(round(p, 6) for p in probs)])
        else:
            record = {"line": line, "label": label, "score": score}
            record["probs"] = {name: round(p, 6) for name, p in zip(self.label_names, probs, strict=True)}
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pending:
            raise RuntimeError(f"predictions for inputs {sorted(self.pending)[:5]}... never became writable")
        self.stream.flush()
        if self.count == 0:
            self._discard()
            raise UserError("the predict file has no non-blank lines: nothing to predict")
        if self._tmp is None:
            return
        self.stream.close()
        os.replace(self._tmp, self.output)
        self._tmp = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._discard()

    def _discard(self) -> None:
        if getattr(self, "_tmp", None):
            self.stream.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


class Trainer(pl.Trainer):
    """Lightning's Trainer whose ``predict`` writes records to a file instead of returning them."""

    def predict(
        self,
        model: pl.LightningModule | None = None,
        dataloaders=None,
        datamodule: pl.LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
        output: str | None = None,
    ):
        """Predict ``data.predict_file`` and write one record per non-blank input line, in input order.

        Args:
            model: the model (given by the CLI).
            dataloaders: unused by the CLI; the datamodule provides the data.
            datamodule: the datamodule (given by the CLI).
            return_predictions: also keep every prediction in memory and return it (off by default).
            ckpt_path: checkpoint to predict with; its settings are the defaults of this run.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
            output: file for the predictions: JSON Lines, or CSV when it ends in ``.csv``;
                standard output when not given.
        """
        writer = PredictionWriter(output)
        self.callbacks.append(writer)
        if output is None:  # records go to stdout: keep progress bars out of it
            self.callbacks = [cb for cb in self.callbacks if not isinstance(cb, ProgressBar)]
        try:
            return super().predict(
                model, dataloaders, datamodule, bool(return_predictions), ckpt_path, weights_only=weights_only
            )
        finally:
            self.callbacks.remove(writer)
