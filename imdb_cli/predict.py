"""Writing predictions: a callback that streams one record per input line to JSON Lines or CSV."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from imdb_cli import staging
from imdb_cli.errors import UserError
from imdb_cli.staging import staged_file


class PredictionWriter(BasePredictionWriter):
    """Stream predictions as they are made, in input order, so that memory does not grow with the input.

    Each record is ``{"line", ...}``, the 1-based input line (a table's row), then what the task
    predicts (:meth:`imdb_cli.tasks.Task.record`): ``label``, ``score`` (its probability) and every
    label's ``probs`` for a classifier; ``labels`` (those whose probability reaches their threshold,
    possibly none) and ``probs`` for a multi-label one (``|``-joined in CSV); ``value`` for a regression.
    A predict table's ``--data.id_column`` comes first, under its own name; with ``embeddings``, the
    [CLS] vector follows. A path ending in ``.csv`` gives CSV, any other path JSON Lines, and no path
    standard output. A file is written beside its destination and moved into place only when complete, so an
    existing file survives a failed run.

    With several processes (DDP), each rank predicts every ``world_size``-th input
    (:class:`~imdb_cli.data.batching.LineDataset`) into a part file beside the output; rank 0
    then interleaves the parts into the one output, in input order. Every rank must see the
    output's directory (one machine, or a shared filesystem).
    """

    def __init__(self, output: str | None = None, embeddings: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self.embeddings = embeddings
        self.count = 0

    @property
    def is_csv(self) -> bool:
        return self.output is not None and self.output.lower().endswith(".csv")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.world, self.rank = trainer.world_size, trainer.global_rank
        self.count = 0
        self.next_index = self.rank
        self.pending: dict[int, tuple[int, list[float], dict, list[float] | None]] = {}
        self.task = pl_module.task
        self.width = pl_module.embedding_width if self.embeddings else 0
        datamodule = getattr(trainer, "datamodule", None)
        id_column = getattr(datamodule, "hparams", {}).get("id_column")
        self.copied_columns = [id_column] if id_column else []
        self._tmp = self._parts = None
        directory = self._output_directory()
        if self.world == 1:
            self._open_output()
            return
        parts = None
        if self.rank == 0:
            directory = directory or Path(trainer.default_root_dir)
            directory.mkdir(parents=True, exist_ok=True)
            parts = tempfile.mkdtemp(prefix=".imdb-predict-", dir=directory)
        self._parts = Path(trainer.strategy.broadcast(parts, src=0))
        self.stream = open(self._parts / f"{self.rank}.jsonl", "w", encoding="utf-8")  # noqa: SIM115 (closed at the end)

    def _output_directory(self) -> Path | None:
        if self.output is None:
            return None
        dest = Path(self.output)
        if dest.is_dir():
            raise UserError(f"--output {self.output} is a directory")
        if not dest.parent.is_dir():
            raise UserError(f"--output {self.output}: directory {dest.parent} does not exist")
        return dest.parent

    def _open_output(self) -> None:
        if self.output is None:
            self.out = sys.stdout
        else:
            dest = Path(self.output)
            fd, self._tmp = staged_file(dest)
            self.out = os.fdopen(fd, "w", encoding="utf-8", newline="")
        if self.is_csv:
            self.csv = csv.writer(self.out)
            vector = (f"emb_{i}" for i in range(self.width))
            self.csv.writerow([*self.copied_columns, "line", *self.task.csv_columns(), *vector])
        if self.world == 1:
            self.stream = self.out

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        """Hold records that arrive early (batches are sorted by length) until their turn comes."""
        size = len(prediction["index"])
        copied = prediction.get("copied") or [{}] * size
        vectors = prediction["embedding"].tolist() if self.embeddings else [None] * size
        indices, lines, scores = (
            prediction["index"].tolist(),
            prediction["line"].tolist(),
            prediction["scores"].tolist(),
        )
        for index, *record in zip(indices, lines, scores, copied, vectors, strict=True):
            self.pending[index] = tuple(record)
        while self.next_index in self.pending:
            record = self.pending.pop(self.next_index)
            if self.world == 1:
                self.write(*record)
            else:
                self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self.count += 1
            self.next_index += self.world

    def write(self, line: int, scores, copied: dict | None = None, vector: list | None = None) -> None:
        """One record to the output, from one text's scores (probabilities, or a regression's value)."""
        predicted = self.task.record(scores)
        copied = copied or {}
        vector = [round(x, 6) for x in vector] if vector is not None else None
        if self.is_csv:
            ids = [copied.get(column) for column in self.copied_columns]
            self.csv.writerow([*ids, line, *self.task.csv_values(predicted), *(vector or [])])
        else:
            record = {**copied, "line": line, **predicted}
            if vector is not None:
                record["embedding"] = vector
            self.out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pending:
            raise RuntimeError(f"predictions for inputs {sorted(self.pending)[:5]}... never became writable")
        self.stream.flush()
        total = self.count
        if self.world > 1:
            self.stream.close()
            count = torch.tensor(self.count, device=pl_module.device)
            total = int(trainer.strategy.reduce(count, reduce_op="sum"))  # every part is complete after this
        if total == 0:
            self._discard()
            raise UserError("the predict file has no non-blank lines: nothing to predict")
        if self.world > 1:
            if self.rank != 0:
                return
            self._open_output()
            self._merge_parts()
        self.out.flush()
        if self._tmp is not None:
            self.out.close()
            staging.replace(self._tmp, self.output)
            self._tmp = None

    def _merge_parts(self) -> None:
        """Interleave the ranks' parts: rank ``r`` holds inputs ``r``, ``r + world``, ..., in order."""
        with contextlib.ExitStack() as stack:
            files = [self._parts / f"{rank}.jsonl" for rank in range(self.world)]
            parts = [stack.enter_context(open(file, encoding="utf-8")) for file in files]
            for records in itertools.zip_longest(*parts):
                for record in itertools.takewhile(lambda r: r is not None, records):
                    self.write(*json.loads(record))
        shutil.rmtree(self._parts, ignore_errors=True)
        self._parts = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._discard()

    def _discard(self) -> None:
        if getattr(self, "_tmp", None):
            self.out.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None
        if getattr(self, "_parts", None) is not None:
            self.stream.close()
            if self.rank == 0:
                shutil.rmtree(self._parts, ignore_errors=True)
            self._parts = None
