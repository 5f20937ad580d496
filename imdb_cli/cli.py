"""The ``imdb`` command: LightningCLI wiring of the model, the data and the trainer.

Subcommands are LightningCLI's own (fit, validate, test, predict), ``export``, ``serve``, ``sweep``
and ``lr_find``; each one's options beyond the model, data and trainer come from the signature of
the method of the same name of :class:`imdb_cli.trainer.Trainer` (``predict --output``, ``test
--report_dir``, ``export --output_dir``).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import os
import re
import sys
import typing
from argparse import ArgumentError
from pathlib import Path

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from imdb_cli import encoders
from imdb_cli.checkpoints import checkpoint_defaults
from imdb_cli.console import quiet
from imdb_cli.data.datamodule import IMDBDataModule
from imdb_cli.deploy.export import exported_defaults, is_trained_directory
from imdb_cli.deploy.onnx_runtime import is_onnx_export, onnx_fit_message
from imdb_cli.errors import UserError
from imdb_cli.model import SentimentClassifier
from imdb_cli.report import report_dir
from imdb_cli.trainer import Trainer
from imdb_cli.usage import one_line


class IMDBCLI(LightningCLI):
    """LightningCLI whose ``--ckpt_path`` also brings the checkpoint's model and data settings,
    and ``--model_dir`` (or a ``--model.encoder`` that is one) those of a trained classifier's
    directory: an ``imdb export``, or any transformers sequence classifier.

    Those settings become defaults: a config file or a command-line value still wins, so
    ``imdb test --ckpt_path CKPT`` needs no config, and ``--data.source`` can point elsewhere.
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """LightningCLI's subcommands and imdb's own, with the arguments the CLI fills in."""
        given = {"model", "datamodule"}
        own = {"export": given, "serve": given, "sweep": given | {"fit_config", "fit_refuses"}, "lr_find": given}
        return {**LightningCLI.subcommands(), **own}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # IMDBDataModule gives each rank its own length-grouped batches; Lightning must not re-shard them.
        parser.set_defaults(
            {
                "trainer.use_distributed_sampler": False,
                "trainer.precision": "bf16-mixed",  # falls back to 32-true on hardware without bf16
            }
        )
        parser.link_arguments("model.encoder", "data.tokenizer")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.link_arguments("data.task_kind", "model.task_kind", apply_on="instantiate")
        parser.link_arguments(
            "trainer.default_root_dir", "trainer.logger.init_args.save_dir", compute_fn=lambda root: root or "."
        )

    def __init__(self, *args, fast_exit: bool = False, **kwargs) -> None:
        given = kwargs.get("args")  # LightningCLI's own `args`, given by keyword
        self._argv = list(sys.argv[1:] if given is None else given)
        self._fast_exit = fast_exit
        super().__init__(*args, **kwargs)

    @property
    def _requested(self) -> str | None:
        """The subcommand named on the command line, before any parsing."""
        return next((a for a in self._argv if a in self.subcommands()), None)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs) -> LightningArgumentParser:
        """Only the subcommand being run gets its full parser: each one introspects the trainer, model
        and data signatures, and ``imdb --help`` lists subcommands by their descriptions alone."""
        if subcommand != self._requested:
            self._subcommand_method_arguments[subcommand] = []
            return self.init_parser(**kwargs)
        return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if not add_subcommands:
            return
        self._own_options = {name: self._options_of(name) for name in self.subcommands()}
        every = set().union(*self._own_options.values())
        for name, subparser in getattr(self, "_subcommand_parsers", {}).items():
            if not self._subcommand_method_arguments[name]:
                continue  # not being run
            # A checkpoint is data: never let torch.load unpickle arbitrary objects from it.
            if "weights_only" in self._own_options[name]:
                subparser.set_defaults(weights_only=True)
            if name != "export":
                subparser.add_argument(
                    "--model_dir",
                    type=str | None,
                    default=None,
                    help="A trained classifier's directory, written by `imdb export` or by save_pretrained "
                    "of a transformers *ForSequenceClassification: its encoder, head, tokenizer, label names "
                    "and truncation, in place of --ckpt_path",
                )
            # The config one subcommand saves or prints works with every other: their options are ignored.
            for key in sorted(every - self._own_options[name]):
                subparser.add_argument(f"--{key}", type=typing.Any, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def _options_of(self, subcommand: str) -> set[str]:
        """A subcommand's own options beyond the model, data and trainer: its trainer method's arguments."""
        skip = {"self", *self.subcommands()[subcommand]}
        own = set(inspect.signature(getattr(self.trainer_class, subcommand)).parameters) - skip
        return own | ({"model_dir"} if subcommand != "export" else set())

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        argv = self._argv  # the same `args` LightningCLI passes here
        try:
            try:
                self._parse(parser, argv)
            except ArgumentError as err:
                subcommand = self._requested if hasattr(self, "_subcommand_parsers") else None
                subparser = self._subcommand_parsers[subcommand] if subcommand else parser
                raise UserError(one_line(str(err), subparser, subcommand, argv)) from None
        except SystemExit as done:  # --help, --print_config
            if self._fast_exit:
                leave(done.code)
            raise
        except UserError as err:
            if self._fast_exit:
                leave(fail(err))
            raise

    def _parse(self, parser: LightningArgumentParser, argv: list[str]) -> None:
        """Parse twice where needed: the checkpoint's or export's settings become defaults, and the
        precision this hardware will run is the one ``--print_config`` shows and the run saves."""
        printing = any(a.startswith("--print_config") for a in argv)
        self.config = parser.parse_args([a for a in argv if not a.startswith("--print_config")])
        subcommand = self.config.get("subcommand")
        section = self.config[subcommand] if subcommand else self.config
        reparse = printing
        if subcommand:
            self._refuse_other_commands_options(subcommand, argv)
            ckpt_path = section.get("ckpt_path")
            model_dir = section.get("model_dir") if subcommand != "export" else None
            if ckpt_path and model_dir:
                raise UserError("pass --ckpt_path or --model_dir, not both")
            if subcommand == "fit" and model_dir and is_onnx_export(model_dir):
                raise UserError(onnx_fit_message(model_dir))
            encoder = section.get("model", {}).get("encoder")
            if ckpt_path or model_dir:
                defaults = checkpoint_defaults(ckpt_path) if ckpt_path else exported_defaults(model_dir)
                self._subcommand_parsers[subcommand].set_defaults(defaults)
                reparse = True
            elif encoder and is_trained_directory(encoders.resolve(encoder)):
                # A trained classifier as the encoder: its labels, head and length come along.
                defaults = exported_defaults(encoders.resolve(encoder), encoder=False)
                self._subcommand_parsers[subcommand].set_defaults(defaults)
                reparse = True
        precision = supported_precision(section.trainer.precision, section.trainer.accelerator)
        if precision != section.trainer.precision:
            argv = [*argv, f"--trainer.precision={precision}"]
            reparse = True
        if reparse:
            self.config = parser.parse_args(argv)

    def _refuse_other_commands_options(self, subcommand: str, argv: list[str]) -> None:
        """Another subcommand's option is ignored in a config file, but is a mistake on the command line."""
        given = argv[argv.index(subcommand) + 1 :]
        for arg in given:
            key = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
            if key and key not in self._own_options[subcommand]:
                owners = [name for name, own in self._own_options.items() if key in own]
                if owners:
                    names = ", ".join(owners[:-1]) + " and " * (len(owners) > 1) + owners[-1]
                    raise UserError(f"--{key} is an option of imdb {names}, not of imdb {subcommand}")

    def before_instantiate_classes(self) -> None:
        section = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand == "sweep":  # the trials' configuration, as given: every trial is a fit with a logger
            self._fit_config = self._trials_config()
        if self.subcommand in (None, "fit"):
            keep_artifacts_in_run(section.trainer)
            return
        self.save_config_callback = None  # only fit makes a run; the others write what they are asked
        if self.subcommand in ("test", "validate") and reporting_logger(section.trainer.logger):
            self._evaluation_run_dir(section)
        elif self.subcommand != "sweep":  # a sweep builds its trials' logger (one that cannot be is refused now)
            section.trainer.logger = False
        keep_artifacts_in_run(section.trainer)

    def _evaluation_run_dir(self, section) -> None:
        """A test's or validation's logger writes beside its report (``RUN/test/NAME/`` for a
        checkpoint ``RUN/checkpoints/NAME.ckpt``) unless ``--trainer.default_root_dir`` says where."""
        trainer = section.trainer
        if trainer.default_root_dir:
            return
        if section.get("ckpt_path"):
            where = report_dir(section.ckpt_path)
            where = where.parent.parent / self.subcommand / where.name
        elif section.get("model_dir"):
            where = Path(section.model_dir) / self.subcommand
        else:
            return
        trainer.default_root_dir = str(where)
        for logger in trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]:
            if "save_dir" in logger.get("init_args", {}):
                logger.init_args.save_dir = str(where)

    def instantiate_classes(self) -> None:
        """A class of the configuration that cannot be built (a logger whose store refuses it, a
        package not installed) is one line: the class and the error at the root of it."""
        try:
            super().instantiate_classes()
        except (UserError, MisconfigurationException):
            raise
        except Exception as err:
            raise UserError(cannot_build(err)) from err

    def _start_loggers(self) -> None:
        """Start the loggers now, so that one that fails (its tracking store, its service) does so
        in one line before any training, rather than in a traceback from inside the fit."""
        for logger in self.trainer.loggers:
            try:
                logger.experiment  # noqa: B018 (the property creates the run)
            except Exception as err:
                raise UserError(f"{type(logger).__name__} cannot start: {root_cause(err)}") from err

    def before_fit(self) -> None:
        self._start_loggers()

    def before_validate(self) -> None:
        self._start_loggers()

    def before_test(self) -> None:
        self._start_loggers()

    def _trials_config(self) -> str:
        """The configuration ``sweep`` was given, less its own options, as YAML for ``imdb fit --config``."""
        config = self.config["sweep"].clone()
        for key in self._own_options["sweep"]:
            config.pop(key, None)
        dumped = self._subcommand_parsers["sweep"].dump(config, skip_check=True)
        return f"# imdb fit --config THIS_FILE (written by imdb sweep)\n{dumped}"

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        """``sweep`` also gets the configuration its trials fit, and a check of their arguments."""
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if subcommand == "sweep":
            kwargs["fit_config"], kwargs["fit_refuses"] = self._fit_config, fit_refuses
        return kwargs

    def _parse_ckpt_path(self) -> None:
        """Replaced by :meth:`parse_arguments`: LightningCLI's own lets the checkpoint override the command line."""

    def after_fit(self) -> None:
        """Say which checkpoint holds the result: the best by validation, else the last one."""
        if not self.trainer.is_global_zero:
            return
        if self.trainer.fast_dev_run:
            print("imdb: fast_dev_run saves no checkpoint", file=sys.stderr)
            return
        saved = [cb for cb in self.trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
        best = [cb for cb in saved if cb.monitor and cb.best_model_path and Path(cb.best_model_path).is_file()]
        last = [cb.last_model_path for cb in saved if cb.last_model_path and Path(cb.last_model_path).is_file()]
        if best:
            callback = best[0]
            score = callback.best_model_score
            metric = f" ({callback.monitor}={score:.4f})" if score is not None else ""
            print(f"best checkpoint: {callback.best_model_path}{metric}")
            return
        if any(not getattr(cb, "validated", True) for cb in self.trainer.callbacks):
            print(
                "imdb: no validation ran in this fit: no best checkpoint was chosen and early stopping did not act",
                file=sys.stderr,
            )
        if last:
            print(f"last checkpoint: {last[0]}")


def reporting_logger(logger) -> bool:
    """Whether a test or validation keeps the configured logger: a class other than TensorBoard's
    (the test report writes its own TensorBoard events); Lightning's default logger is not kept."""
    loggers = logger if isinstance(logger, list) else [logger]
    classes = [str(item.get("class_path", "")) for item in loggers if hasattr(item, "get")]
    return bool(classes) and not all(name.endswith("TensorBoardLogger") for name in classes)


def keep_artifacts_in_run(trainer) -> None:
    """MLflow with a local database (``sqlite:///``) keeps a new experiment's artifacts in
    ``RUN/mlartifacts`` rather than ``./mlruns`` of the working directory; an ``artifact_location``
    given is kept, and so is an experiment that exists already (MLflow fixes it at creation)."""
    loggers = trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]
    for logger in loggers:
        init_args = logger.get("init_args") if hasattr(logger, "get") else None
        if not str(logger.get("class_path", "") if init_args else "").endswith("MLFlowLogger"):
            continue
        if str(init_args.get("tracking_uri") or "").startswith("sqlite:") and not init_args.get("artifact_location"):
            init_args.artifact_location = (Path(trainer.default_root_dir or ".").resolve() / "mlartifacts").as_uri()


def root_cause(err: BaseException) -> str:
    """The first line of the error at the root of ``err``'s chain of causes."""
    while err.__cause__ is not None or (err.__context__ is not None and not err.__suppress_context__):
        err = err.__cause__ or err.__context__
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def cannot_build(err: Exception) -> str:
    """One line for a configured class that failed to build, naming the class where the error does."""
    classes = re.findall(r"class_path='([\w.]+)'", str(err))
    what = classes[-1].rsplit(".", 1)[-1] if classes else "the configuration"
    return f"cannot create {what}: {root_cause(err)}"


def supported_precision(precision, accelerator) -> str | int | None:
    """``bf16-mixed`` where the hardware computes in bf16, else full precision with a note.

    CPUs without native bf16 (AVX512-BF16 or AMX) would emulate it, slower than fp32.
    """
    if str(precision) != "bf16-mixed" or has_bf16(accelerator) in (True, None):
        return precision
    print("imdb: this hardware has no native bf16; training in full precision (32-true)", file=sys.stderr)
    return "32-true"


def has_bf16(accelerator) -> bool | None:
    """Whether the device ``accelerator`` picks computes in bf16 natively; ``None`` for devices not known here."""
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if accelerator in ("cpu", "auto", "gpu", "cuda"):
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return None


SWITCHES = ("--embeddings",)
"""Boolean options that may be given bare, as switches: ``--embeddings`` means ``--embeddings true``."""


def with_switch_values(argv: list[str]) -> list[str]:
    """``argv`` with ``true`` after each bare switch; jsonargparse wants a value for every bool."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in SWITCHES and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("true")
    return out


def main(args: list[str] | None = None, fast_exit: bool = False) -> None:
    """Run the ``imdb`` command line on ``args`` (by default ``sys.argv``).

    With ``fast_exit`` (the console script), a command that ends while its arguments are parsed
    (``--help``, ``--print_config``, a mistake) leaves with ``os._exit``: nothing has started, and
    the interpreter's teardown of torch, Lightning and transformers alone took over a second.
    """
    quiet()
    try:
        IMDBCLI(
            SentimentClassifier,
            IMDBDataModule,
            trainer_class=Trainer,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={
                "description": "Fine-tune transformer encoders for text classification.",
                "exit_on_error": False,  # mistakes become one line (imdb_cli/usage.py), not the whole usage
            },
            args=with_switch_values(sys.argv[1:] if args is None else args),
            fast_exit=fast_exit,
        )
    except (UserError, MisconfigurationException) as err:
        sys.exit(fail(err))
    except KeyboardInterrupt as interrupt:
        print("imdb: interrupted", file=sys.stderr)
        sys.exit(getattr(interrupt, "exit_code", 130))


def fit_refuses(args: list[str]) -> str | None:
    """The one-line error ``imdb fit ARGS`` gives while parsing them, or ``None`` if it takes them;
    nothing is built or run (``--print_config`` ends it, and what it prints is dropped)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(printed):
        try:
            main(["fit", *args, "--print_config"])
        except SystemExit as done:
            if done.code in (0, None):
                return None
    lines = printed.getvalue().strip().splitlines() or ["(no message)"]
    return lines[-1].removeprefix("imdb: error: ")


def fail(err: Exception) -> int:
    """Print a mistake as one line on stderr; the exit status of every mistake, 1."""
    print(f"imdb: error: {str(err).splitlines()[0]}", file=sys.stderr)
    return 1


def leave(code: int | str | None) -> typing.NoReturn:
    """Exit at once, flushing what was printed, without the interpreter's teardown."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
