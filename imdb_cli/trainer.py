"""Lightning's Trainer with what the ``imdb`` subcommands add: a file of predictions, a test
report, and ``export``. LightningCLI makes each method's signature the subcommand's options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.plugins import CheckpointIO, TorchCheckpointIO

from imdb_cli.checkpoints import CheckpointWriter
from imdb_cli.deploy.export import ExportFormat, Quantization, is_trained_directory
from imdb_cli.predict import PredictionWriter
from imdb_cli.report import TestReport, report_dir
from imdb_cli.schedules import RunLength


class Trainer(pl.Trainer):
    """Lightning's Trainer (the settings below), with imdb's predict, test and export.

    ``predict`` writes records to a file instead of returning them, ``test`` writes a report,
    and ``export`` turns a checkpoint into a directory that needs neither Lightning nor this tool.
    """

    def __init__(self, *args, min_optimizer_steps: NonNegativeInt = 0, **kwargs) -> None:
        """Lightning's settings, and one of imdb's own.

        Args:
            min_optimizer_steps: small data: train for as many epochs as make at least this many
                optimizer steps, when ``max_epochs`` makes fewer. One epoch of 1,500 texts in
                batches of 16 is 94 steps, much of them OneCycle's warm-up, and validation runs
                once; with this set, the run takes more epochs, its schedule spans all of them, and
                validation, ``best.ckpt`` and early stopping act at each epoch's end. A set of more
                than ``batch_size * min_optimizer_steps`` training texts keeps ``max_epochs``. 0
                (the default) keeps ``max_epochs`` always.
        """
        super().__init__(*args, **kwargs)
        plugins = kwargs.get("plugins") or []
        given = any(isinstance(p, CheckpointIO) for p in (plugins if isinstance(plugins, list) else [plugins]))
        if not given and type(self.strategy.checkpoint_io) is TorchCheckpointIO:  # Lightning's default
            self.strategy.checkpoint_io = CheckpointWriter()
        if min_optimizer_steps:
            self.callbacks.append(RunLength(min_optimizer_steps))

    @property
    def log_dir(self) -> str | None:
        """The run's directory, under ``--trainer.default_root_dir`` whichever the logger: TensorBoard's
        and CSV's own ``NAME/VERSION``, ``NAME/VERSION`` of the others too (MLflow: experiment and
        run id; W&B: project and run id), whose ``save_dir`` is a tracking store or nothing.
        ``config.yaml`` and the checkpoints go here, one directory per run."""
        logger = self.loggers[0] if self.loggers else None
        if logger is None or isinstance(logger, (TensorBoardLogger, CSVLogger)):
            return super().log_dir
        return self.strategy.broadcast(os.path.join(self.default_root_dir, str(logger.name), str(logger.version)))

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
        curves (PNG, and TensorBoard events). Given a logger other than TensorBoard
        (``--trainer.logger MLFlowLogger``, ``CSVLogger``, ``WandbLogger``), the test's metrics, and
        for MLflow and W&B the report, go to it too, in a run of its own beside the report.

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
        format: ExportFormat = "safetensors",
        quantize: Quantization | None = None,
    ) -> None:
        """Write a checkpoint's classifier as a directory that plain transformers, or ONNX Runtime, can read.

        The directory holds the weights, the encoder config, the tokenizer, label names, maximum
        length and truncation, and a model card with the test metrics that ``imdb test`` recorded
        for the checkpoint. ``imdb predict``, ``test`` and ``serve --model_dir DIR`` read it, and so
        does plain transformers + torch, or ONNX Runtime (docs: guides/export.md).

        Args:
            model: the model (given by the CLI, with the checkpoint's settings).
            datamodule: the datamodule (given by the CLI, with the checkpoint's settings).
            ckpt_path: the checkpoint to export.
            output_dir: the directory to write; an earlier export there is replaced.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
            format: ``safetensors``: the encoder as transformers saves it, and the head; ``onnx``:
                encoder and head as one ONNX graph (``model.onnx``), fused for ONNX Runtime's CPU
                kernels, without a padding mask: imdb runs each text alone, at its own length
                (needs the ``onnx`` extra: onnx and onnxruntime).
            quantize: ``int8``: ONNX Runtime's dynamic quantization of the graph's weights, for
                fast CPU inference (``--format onnx`` only); ``imdb test --model_dir`` measures
                what it costs in accuracy.
        """
        from imdb_cli.deploy.export import export

        path = export(model, datamodule, ckpt_path, output_dir, weights_only, format, quantize)
        print(f"exported {ckpt_path} to {path}")

    def serve(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
        host: str = "127.0.0.1",
        port: PositiveInt = 8000,
        max_batch_size: PositiveInt = 32,
        max_wait_ms: NonNegativeFloat = 5.0,
        max_texts: PositiveInt = 256,
        max_queue: PositiveInt = 1024,
        request_timeout: PositiveFloat = 60.0,
        max_request_bytes: PositiveInt = 4_000_000,
        api_key_env: str | None = None,
        allow_unauthenticated: bool = False,
        access_log: bool = False,
    ) -> None:
        """Serve a checkpoint or an export (safetensors or ONNX) over HTTP until SIGTERM or Ctrl-C.

        ``POST /predict`` with ``{"texts": ["...", ...]}`` (a pair model: ``[["first", "second"], ...]``)
        answers ``{"predictions": [...]}``, the records ``imdb predict`` writes, in the request's order;
        ``POST /`` speaks Hugging Face's inference protocol (``InferenceClient(model=URL)``); ``GET
        /health`` says what is served, ``GET /metrics`` is Prometheus', ``GET /docs`` the OpenAPI
        description. Texts of concurrent requests run together in batches. A stop signal lets the
        requests received finish, then exits 0 (docs: guides/serving.md). Needs the ``serve`` extra
        (``pip install -e '.[serve]'``).

        Args:
            model: the model (given by the CLI, with the checkpoint's or export's settings).
            datamodule: the datamodule (given by the CLI): its tokenization, length and truncation.
            ckpt_path: the checkpoint to serve; or ``--model_dir`` for an export.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``.
            host: the address to listen on; 127.0.0.1 takes connections from this machine only. Any
                other address needs ``--api_key_env`` or ``--allow_unauthenticated``.
            port: the TCP port to listen on.
            max_batch_size: the most texts run together in one batch, from one request or several;
                1 runs every text alone (no batching).
            max_wait_ms: how long a batch that is not full waits for more texts before it runs.
            max_texts: the most texts one request may hold (413 beyond).
            max_queue: the most texts waiting for a batch; a request that would make more wait gets
                503 with ``Retry-After``, so that an overloaded server answers at once instead of late.
            request_timeout: the most seconds a request waits for its answer (504 beyond); also how
                long a stop waits for the requests in flight.
            max_request_bytes: the largest request body taken (413 beyond).
            api_key_env: the name of an environment variable holding an API key: every route but
                ``/health`` then needs ``Authorization: Bearer <key>`` (401 otherwise). The key itself
                is never a setting, so that it stays out of command lines and config files.
            allow_unauthenticated: listen beyond loopback without an API key (behind a proxy that
                authenticates).
            access_log: log every request (uvicorn's access log).
        """
        from imdb_cli.deploy.serving.server import serve

        serve(
            model, datamodule, self.precision_plugin.forward_context, self.strategy.root_device, ckpt_path,
            weights_only is not False, host, port, max_batch_size, max_wait_ms, max_texts, max_queue,
            request_timeout, max_request_bytes, api_key_env, allow_unauthenticated, access_log,
        )  # fmt: skip

    def sweep(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        sweep: str,
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: PositiveInt | None = None,
        fit_config: str = "",
        fit_refuses: Callable[[list[str]], str | None] | None = None,
    ) -> None:
        """Search hyperparameters with Optuna: many fits of this configuration, each with other settings.

        Each trial is an ``imdb fit`` of its own in ``RUN/sweep/trial_NNN/`` (``RUN`` is
        ``--trainer.default_root_dir``); then ``RUN/sweep/trials.csv``, ``best.yaml`` for ``imdb fit
        --config``, the mean and standard deviation of the metric, and plots (docs: guides/sweeps.md). A
        sweep over ``data.fold`` with the grid sampler is a k-fold cross-validation
        (``configs/sweeps/kfold.yaml``). Needs the ``sweep`` extra (``pip install -e '.[sweep]'``).

        Args:
            model: the model (given by the CLI).
            datamodule: the datamodule (given by the CLI).
            sweep: the sweep file: parameters to search, metric, direction, trials, sampler and pruner.
            storage: the study's database URL; by default ``sqlite:///RUN/sweep.db``. Processes
                pointed at one study run its trials in parallel (PostgreSQL across machines).
            study_name: the study in the storage; by default the sweep file's name (``lr`` for ``lr.yaml``).
            n_trials: trials to run, finished ones included, in place of the sweep file's ``n_trials``.
            fit_config: the configuration every trial starts from (given by the CLI).
            fit_refuses: why ``imdb fit`` refuses some arguments, or ``None`` (given by the CLI).
        """
        from imdb_cli.tuning.sweep import run_sweep

        root = Path(self.default_root_dir)
        run_sweep(model, sweep, fit_config, root, storage, study_name, n_trials, fit_refuses or (lambda args: None))

    def lr_find(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        min_lr: PositiveFloat = 1e-7,
        max_lr: PositiveFloat = 1e-2,
        num_training: PositiveInt | None = None,
        early_stop_threshold: PositiveFloat | None = 4.0,
        output_dir: str | None = None,
    ) -> None:
        """Lightning's learning-rate finder on this model, data and optimizer.

        Trains ``num_training`` steps with the learning rate rising exponentially from ``min_lr``
        to ``max_lr`` (the configured scheduler is set aside meanwhile), then suggests the rate where
        the loss fell fastest: a starting point for the optimizer's ``lr``, or OneCycleLR's
        ``max_lr``. Writes ``lr_find.json`` (the suggestion and the curve) and ``lr_find.png``
        (loss against learning rate); the model is not saved. After three steps it says how long
        the rest will take.

        Args:
            model: the model (given by the CLI).
            datamodule: the datamodule (given by the CLI).
            min_lr: the first learning rate tried.
            max_lr: the last learning rate tried.
            num_training: how many training steps (learning rates) to try; by default an epoch's
                batches, at least 20 and at most 100.
            early_stop_threshold: stop once the loss exceeds this multiple of the best loss so far;
                ``null`` tries every rate.
            output_dir: where the results go; by default ``RUN/lr_find/`` (``--trainer.default_root_dir``).
        """
        from imdb_cli.tuning.lr_find import find_learning_rate

        out = Path(output_dir) if output_dir else Path(self.default_root_dir) / "lr_find"
        find_learning_rate(self, model, datamodule, min_lr, max_lr, num_training, early_stop_threshold, out)


def _default_report_dir(model: pl.LightningModule | None, ckpt_path: str | None) -> Path | None:
    """Beside the checkpoint's run, or inside the trained classifier's directory the model was read from."""
    if ckpt_path and Path(ckpt_path).is_file():
        return report_dir(ckpt_path)
    encoder = Path(str(getattr(model, "hparams", {}).get("encoder", ""))).expanduser()
    if is_trained_directory(encoder):
        return encoder / "test"
    return None
