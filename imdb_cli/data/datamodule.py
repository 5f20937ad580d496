"""The DataModule: labelled texts from any source to tokenized, dynamically padded batches."""

from __future__ import annotations

import math
import random
import sys
from collections import Counter
from functools import cache, partial
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
from jsonargparse.typing import NonNegativeInt, PositiveInt, restricted_number_type
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from imdb_cli.data.batching import LengthBatchSampler, LineDataset, PadCollate, TokenizedDataset, bucket_widths
from imdb_cli.data.cache import TokenCache, fingerprint, tokenizer_fingerprint
from imdb_cli.data.download import IMDB_URL, cached_path, download, is_url
from imdb_cli.data.sources import ACLIMDB_LABELS, LabeledTexts, read_aclimdb, read_lines
from imdb_cli.data.splits import stratified_fold, stratified_split
from imdb_cli.data.tables import TABLE_SUFFIXES, is_table, read_predict_rows, read_table
from imdb_cli.data.tokenization import Encoder, Truncation
from imdb_cli.encoders import load_tokenizer
from imdb_cli.errors import UserError
from imdb_cli.tasks import RECORD_FIELDS, TASKS, MultiLabel, SingleLabel, Task, TaskName

Share = restricted_number_type("Share", float, [(">=", 0), ("<", 1)], join="and")
"""A share in [0, 1)."""

SPLITS_OF_STAGE = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}
"""The labelled splits each Lightning stage reads."""

RATING = "rating"
"""The target of a regression on aclImdb: each review's star rating, from its file name."""


class IMDBDataModule(pl.LightningDataModule):
    """IMDB reviews, or any CSV/JSON Lines/Parquet text classification or regression set, as tokenized batches.

    Labelled data comes either from ``source`` (aclImdb: a URL, a ``.tar.gz`` or a directory) or,
    when any of ``train_file``/``val_file``/``test_file`` is given, from those tables. Without a
    ``val_file`` the training data is split into train and validation, seeded and stratified by
    label; the test split is always used whole.

    Args:
        source: aclImdb data: an ``http(s)://`` URL of ``aclImdb_v1.tar.gz`` (downloaded once into
            ``cache_dir``), a local ``.tar.gz`` of it, or an extracted ``aclImdb/`` directory.
        train_file: CSV/TSV/JSON Lines/Parquet file of training texts and labels; replaces ``source``.
        val_file: validation table; without it ``val_fraction`` of the training data is held out.
        test_file: test table.
        predict_file: UTF-8 text, one input per line (blank lines skipped); ``-`` reads stdin. A
            ``.csv``, ``.tsv``, ``.jsonl`` (``.json``, ``.ndjson``) or ``.parquet`` file is a table:
            its ``text_column`` is predicted, row by row (rows with an empty text skipped).
        invalid_utf8: invalid UTF-8 in any input (tables, aclImdb reviews, the predict file):
            ``error`` stops and names the file and line, ``replace`` reads U+FFFD in place of the
            bad bytes.
        text_column: column of the tables holding the text, or two columns (``[premise, hypothesis]``)
            holding a pair of texts, encoded together as the encoder was pretrained on pairs: a
            separator between them, segment ids where the model has them, the longer text cut first
            (``truncation`` applies to single texts).
        label_column: column of the tables holding the label: a class name, a JSON list of class
            names (multi-label), or a number (regression).
        label_separator: split each label cell on this string (``|`` for ``action|comedy``), which
            makes the task multi-label; an empty cell is a text with none of the labels.
        task: ``classification`` (one label per text; multi-label as soon as the labels are JSON
            lists or ``label_separator`` is given), ``multi_label``, or ``regression`` (a number
            per text; on aclImdb, each review's star rating, 1-4 and 7-10, from its file name).
        id_column: column of a predict table copied into every prediction record, under its own
            name, to join the predictions back to the table.
        label_names: class names in label-id order; by default fixed by aclImdb
            (negative, positive) or read from the training table, sorted.
        tokenizer: tokenizer name or directory; linked to ``model.encoder``, not set on its own.
        max_length: most tokens per text, special tokens included.
        truncation: which tokens of a longer text to keep: ``head``, ``tail`` or ``head_tail``
            (the first ``head_tokens`` and the last ones, best on IMDB in Sun et al. 2019).
        head_tokens: with ``head_tail``, how many leading tokens to keep; the rest come from the end.
        batch_size: texts per batch, for training and evaluation alike.
        pad_to_multiple_of: round each batch's padded length up to a multiple of this; ``null``:
            8 on a CUDA GPU, else 1. A GPU pays a one-time cost for every new tensor shape, and
            rounding makes far fewer shapes (docs: benchmarks/gpu.md). On a CPU it was not
            measured to help.
        width_buckets: pad each batch up to the next of at most this many widths, spaced
            geometrically from 16 tokens to ``max_length`` (each a multiple of ``pad_to_multiple_of``):
            with 16 up to 512 tokens, each width is about a quarter more than the one below. For
            ``--model.compile`` and GPUs, where every new width costs once (docs:
            benchmarks/train-speed.md counts them).
            ``null``: every width ``pad_to_multiple_of`` allows.
        batching: training batch order: ``grouped`` puts texts of similar length together (less
            padding, same samples each epoch), ``random`` shuffles plainly. Evaluation and
            prediction batches are always sorted by length; results keep the input order.
        sampler: ``balanced``: each training epoch draws as many texts as the training split holds,
            with replacement, every class equally often (the minority's texts several times, the
            majority's not all): for imbalanced data, beside or instead of ``model.class_weights``.
            ``null``: every training text once per epoch. Single-label classification only.
        val_fraction: share of the training data held out for validation when there is no ``val_file``;
            0 trains on every text and validates never (no best checkpoint, no early stopping).
        min_val_texts: a held-out share of fewer texts than this is not held out: the run trains on
            every text and validates never. A few texts cannot choose a checkpoint or stop a run
            (with 16 labelled texts per class, 8 held out score 0.5 or 0.625 at every epoch), and
            holding them out costs a quarter of the labels. 0: always hold out ``val_fraction``.
        num_folds: k-fold cross-validation: the training data is dealt into this many folds
            (seeded and stratified by label like the split), and fold ``fold`` is the validation
            split in place of ``val_fraction``; a grid sweep over ``data.fold`` (``imdb sweep
            --sweep configs/sweeps/kfold.yaml``) trains on each fold in turn.
        fold: which of the ``num_folds`` folds validates, from 0.
        max_train_samples: seeded random subset of the training split, for quick runs.
        max_val_samples: seeded random subset of the validation split. ``null`` beside
            ``max_train_samples``: validation's usual share of that many training texts (342 beside
            1,024 at ``val_fraction`` 0.25), so that a quick run does not validate on the whole split.
        max_test_samples: seeded random subset of the test split.
        seed: seed of the train/validation split and of the subsets, apart from the training seed.
        num_workers: DataLoader worker processes.
        pin_memory: copy batches into page-locked memory, for faster, asynchronous copies to a
            GPU; ``null`` pins exactly when the trainer runs on a CUDA GPU.
        cache_dir: where downloads and tokenized data are kept.
        cache_tokens: keep token ids on disk, so that a rerun on the same data skips tokenization.
        sha256: expected SHA-256 of a downloaded archive; the official aclImdb URL's is built in.
    """

    def __init__(
        self,
        source: str = IMDB_URL,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        invalid_utf8: Literal["error", "replace"] = "error",
        text_column: str | tuple[str, str] = "text",
        label_column: str = "label",
        label_separator: str | None = None,
        task: TaskName = "classification",
        id_column: str | None = None,
        label_names: list[str] | None = None,
        tokenizer: str = "distilbert-base-uncased",
        max_length: PositiveInt = 512,
        truncation: Truncation = "head_tail",
        head_tokens: NonNegativeInt = 128,
        batch_size: PositiveInt = 16,
        pad_to_multiple_of: PositiveInt | None = None,
        width_buckets: PositiveInt | None = None,
        batching: Literal["grouped", "random"] = "grouped",
        sampler: Literal["balanced"] | None = None,
        val_fraction: Share = 0.25,
        min_val_texts: NonNegativeInt = 0,
        num_folds: PositiveInt | None = None,
        fold: NonNegativeInt = 0,
        max_train_samples: PositiveInt | None = None,
        max_val_samples: PositiveInt | None = None,
        max_test_samples: PositiveInt | None = None,
        seed: int = 42,
        num_workers: NonNegativeInt = 0,
        pin_memory: bool | None = None,
        cache_dir: str = "~/.cache/imdb-cli",
        cache_tokens: bool = True,
        sha256: str | None = None,
    ) -> None:
        super().__init__()
        # The model records the label names (resolved, not None): one owner, no clash in logged hparams.
        self.save_hyperparameters(ignore=["label_names"])
        self._label_names = label_names
        self._names_given = label_names is not None
        self._tables: dict[str, LabeledTexts] = {}
        self.encode: Encoder | None = None
        self._resume: dict = {}
        self.datasets: dict[str, TokenizedDataset | LineDataset] = {}

    @property
    def uses_tables(self) -> bool:
        hp = self.hparams
        return any((hp.train_file, hp.val_file, hp.test_file))

    @property
    def task_kind(self) -> str:
        """The task the labels make: ``--data.task``, except that classification labels that are JSON
        lists, or split by ``label_separator``, make it multi-label. With label names given (a
        checkpoint's or an export's, whose task is given too) no table is read for it."""
        kind = self._parse_kind
        if kind == SingleLabel.name and self.uses_tables and not self._names_given:
            return MultiLabel.name if has_label_sets(self._table(self._first_split).labels) else kind
        return kind

    @property
    def task(self) -> type[Task]:
        return TASKS[self.task_kind]

    @property
    def _first_split(self) -> str:
        """The split label names are read from: the training table when there is one."""
        return "train" if self.hparams.train_file else "val" if self.hparams.val_file else "test"

    @property
    def label_names(self) -> list[str]:
        """Output names in order (the model's head is sized from these): class names, or for a
        regression the target's name."""
        if self._label_names is None:
            if not self.uses_tables:
                regression = self.task_kind == "regression"
                self._label_names = [RATING] if regression else list(ACLIMDB_LABELS.values())
            else:
                labels = self._as_task_labels(self._table(self._first_split).labels)
                self._label_names = self.task.label_names_of(labels, self.hparams.label_column)
        elif len(self._label_names) < 2 and self.task_kind == SingleLabel.name:
            raise UserError(f"--data.label_names {self._label_names}: a classifier needs two or more labels")
        return self._label_names

    def prepare_data(self) -> None:
        """Download the archive when ``source`` is a URL, and fill the token cache.

        Lightning calls this in one process per machine before any ``setup``: with several
        processes (DDP), the data is downloaded and tokenized once, and every rank's ``setup``
        then loads the cached token ids.
        """
        stage = self.trainer.state.fn if self.trainer is not None else None
        if stage == "predict":
            return
        if not self.uses_tables and is_url(self.hparams.source):
            download(self.hparams.source, self._cache_dir, self.hparams.sha256)
        if self.hparams.cache_tokens and stage is not None:
            for split in self._splits(stage):
                self._tokenize(split)

    def setup(self, stage: str) -> None:
        """Read, split, subsample and tokenize what ``stage`` needs (from the cache when there is one)."""
        for split in self._splits(stage):
            self._tokenize(split)
        if stage != "predict":
            return
        path = self.hparams.predict_file
        if not path:
            raise UserError("nothing to predict: pass --data.predict_file FILE (or - for stdin)")
        if path != "-" and not Path(path).is_file():
            problem = "is a directory" if Path(path).is_dir() else "does not exist"
            raise UserError(f"predict file {path} {problem}")
        world, rank = self._ranks()
        if path == "-" and world > 1:
            raise UserError(f"--data.predict_file - (stdin) needs one process, not {world}: pass a file")
        hp = self.hparams
        if hp.id_column in RECORD_FIELDS:
            raise UserError(f"--data.id_column {hp.id_column} would clash with the prediction's own {hp.id_column!r}")
        if is_table(path):
            lines = partial(read_predict_rows, path, hp.text_column, hp.id_column, hp.invalid_utf8)
        elif hp.id_column or not isinstance(hp.text_column, str):
            given = f"--data.id_column {hp.id_column}" if hp.id_column else f"--data.text_column {list(hp.text_column)}"
            raise UserError(f"{given} needs a table to predict ({', '.join(TABLE_SUFFIXES)}), not {path}")
        else:
            lines = partial(read_lines, path, hp.invalid_utf8)
        total = None if path == "-" else sum(1 for _ in lines())  # a first, cheap pass: the progress bar's end
        if total == 0:
            raise UserError("the predict file has no non-blank lines: nothing to predict")
        encode = self.text_encoder().encode
        self.datasets["predict"] = LineDataset(lines, encode, num_replicas=world, rank=rank, total=total)

    def _splits(self, stage: str) -> tuple[str, ...]:
        if stage == "validate" and not self.validates:
            raise UserError(
                "nothing to validate: no --data.val_file, and --data.val_fraction or --trainer.limit_val_batches is 0, "
                "or the share held out is under --data.min_val_texts"
            )
        return tuple(split for split in SPLITS_OF_STAGE[stage] if split != "val" or self.validates)

    def text_encoder(self) -> Encoder:
        """The tokenizer with this run's truncation, loaded on first use."""
        if self.encode is None:
            tokenizer = load_tokenizer(self.hparams.tokenizer)
            hp = self.hparams
            self.encode = Encoder(tokenizer, hp.max_length, hp.truncation, hp.head_tokens)
        return self.encode

    def _ranks(self) -> tuple[int, int]:
        """(number of processes, this process's rank) of the run; (1, 0) outside a trainer."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def labeled_texts(self, split: str) -> LabeledTexts:
        """The texts and labels of ``split`` (train, val or test) after the split and the subset."""
        data = self._table(split)
        limit = self._limit(split)
        if limit is not None and limit < len(data):
            data = data.subset(sorted(random.Random(f"{self.hparams.seed}:{split}").sample(range(len(data)), limit)))
        return data

    def _limit(self, split: str) -> int | None:
        """The most texts ``split`` keeps (``max_{split}_samples``; see ``max_val_samples``)."""
        hp = self.hparams
        limit = hp[f"max_{split}_samples"]
        share = 1 / hp.num_folds if hp.num_folds else hp.val_fraction
        if split == "val" and limit is None and hp.max_train_samples and 0 < share < 1:
            limit = math.ceil(hp.max_train_samples * share / (1 - share))
        return limit

    def _tokenize(self, split: str) -> None:
        if split in self.datasets:
            return
        self.text_encoder()  # a wrong encoder name fails here, before any data is read

        def build() -> tuple[dict[str, list[list[int]]], list]:
            data = self.labeled_texts(split)
            columns = self.text_encoder().batched(data.texts, desc=f"tokenizing {split}")
            print(f"imdb: tokenized {len(data)} {split} texts", file=sys.stderr)
            return columns, data.labels

        if self.hparams.cache_tokens:
            cache = TokenCache(self._cache_dir / "tokens")
            columns, labels = cache.load_or_build(self._cache_key(split), build)
        else:
            columns, labels = build()
        targets = self.task.targets(self._as_task_labels(labels), self.label_names, split)
        self.datasets[split] = TokenizedDataset(columns["input_ids"], targets, columns.get("token_type_ids"))

    def _as_task_labels(self, labels: list) -> list:
        """JSON lists among classification labels make every label of the data a set of labels."""
        if self.task_kind == MultiLabel.name:
            return [label if isinstance(label, tuple) else (label,) for label in labels]
        if has_label_sets(labels):
            raise UserError("the labels mix JSON lists and single labels across splits: pass --data.task multi_label")
        return labels

    def _cache_key(self, split: str) -> dict:
        """Everything that could change the token ids of ``split``."""
        hp = self.hparams
        return {
            "format": 2,
            "split": split,
            "limit": self._limit(split),
            "seed": hp.seed,
            "val_fraction": None if hp.val_file or hp.num_folds else [hp.val_fraction, hp.min_val_texts],
            "folds": [hp.num_folds, hp.fold] if hp.num_folds and not hp.val_file else None,
            "sources": self._fingerprints(split),
            "columns": [hp.text_column, hp.label_column] if self.uses_tables else None,
            "labels": [self._parse_kind, hp.label_separator],
            "tokenizer": tokenizer_fingerprint(self.text_encoder().tokenizer),
            "truncation": [hp.max_length, hp.truncation, hp.head_tokens if hp.truncation == "head_tail" else None],
        }

    def _fingerprints(self, split: str) -> list[str]:
        """Content hashes of the files a split is read from."""
        hp = self.hparams
        if not self.uses_tables:
            return [_fingerprint(self._source_path())]
        files = [hp.test_file] if split == "test" else [hp.train_file, hp.val_file]
        return [_fingerprint(Path(f).expanduser()) if f and Path(f).expanduser().exists() else str(f) for f in files]

    def _table(self, split: str) -> LabeledTexts:
        """The raw texts of ``split``, read once: train and val come from one seeded split."""
        if split not in self._tables:
            hp = self.hparams
            if split == "test":
                self._tables["test"] = self._read(hp.test_file, "test")
            elif hp.val_file:
                if hp.num_folds:
                    raise UserError("--data.num_folds folds the training table: it takes no --data.val_file")
                self._tables["train"] = self._read(hp.train_file, "train")
                self._tables["val"] = self._read(hp.val_file, "val")
            else:
                data = self._read(hp.train_file, "train")
                kind = MultiLabel if has_label_sets(data.labels) else TASKS[self._parse_kind]
                strata = kind.strata(data.labels)
                if hp.num_folds:
                    train, val = stratified_fold(strata, hp.num_folds, hp.fold, hp.seed)
                elif self._too_few_to_hold_out(len(strata)):
                    train, val = list(range(len(strata))), []
                else:
                    train, val = stratified_split(strata, hp.val_fraction, hp.seed)
                self._tables["val"] = data.subset(val)
                self._tables["train"] = data.subset(train)
        return self._tables[split]

    def _too_few_to_hold_out(self, texts: int) -> bool:
        """Whether ``val_fraction`` of ``texts`` training texts is under ``min_val_texts`` (said once)."""
        hp = self.hparams
        held = round(texts * hp.val_fraction)
        if not hp.val_fraction or held >= hp.min_val_texts:
            return False
        if self.trainer is None or self.trainer.is_global_zero:
            print(
                f"imdb: {held} of {texts} texts would validate, under --data.min_val_texts {hp.min_val_texts}: "
                "training on all of them, without validation",
                file=sys.stderr,
            )
        return True

    @property
    def _parse_kind(self) -> str:
        """The task whose ``parse`` reads label cells: what ``--data.task`` and the separator say
        (classification cells that are JSON lists are sets of labels, and say multi-label later)."""
        hp = self.hparams
        return MultiLabel.name if hp.task == SingleLabel.name and hp.label_separator is not None else hp.task

    def _read(self, table: str | None, split: str) -> LabeledTexts:
        hp = self.hparams
        if self.uses_tables:
            if table is None:
                raise UserError(f"no {split} data: pass --data.{split}_file")
            parse = TASKS[self._parse_kind].parse
            path = Path(table).expanduser()
            return read_table(path, hp.text_column, hp.label_column, hp.invalid_utf8, parse, hp.label_separator)
        if not isinstance(hp.text_column, str) or hp.label_separator is not None or hp.task == MultiLabel.name:
            raise UserError("aclImdb reviews are single texts with one label or a rating: pass tables for this task")
        ratings = hp.task == "regression"
        return read_aclimdb(self._source_path(), "test" if split == "test" else "train", hp.invalid_utf8, ratings)

    def _source_path(self) -> Path:
        """The local aclImdb archive or directory, downloading it if ``prepare_data`` has not."""
        source = self.hparams.source
        if not is_url(source):
            path = Path(source).expanduser()
            if not path.exists():
                raise UserError(f"data source {source} does not exist")
            return path
        path = cached_path(source, self._cache_dir)
        return path if path.is_file() else download(source, self._cache_dir, self.hparams.sha256)

    @property
    def _cache_dir(self) -> Path:
        return Path(self.hparams.cache_dir).expanduser()

    def _loader(self, split: str) -> DataLoader:
        dataset = self.datasets[split]
        hp = self.hparams
        on_gpu = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        multiple = hp.pad_to_multiple_of or (8 if on_gpu else 1)
        widths = bucket_widths(hp.max_length, hp.width_buckets, multiple) if hp.width_buckets else ()
        collate = PadCollate(self.text_encoder().tokenizer.pad_token_id, multiple, hp.max_length, widths)
        pin = on_gpu if hp.pin_memory is None else hp.pin_memory
        if split == "predict":
            return DataLoader(dataset, batch_size=self.hparams.batch_size, collate_fn=collate, pin_memory=pin)
        sampler = self._batch_sampler(split)
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=pin,
        )

    def _batch_sampler(self, split: str) -> LengthBatchSampler:
        dataset, hp = self.datasets[split], self.hparams
        world, rank = self._ranks()
        return LengthBatchSampler(
            [len(ids) for ids in dataset.input_ids],
            hp.batch_size,
            order=hp.batching if split == "train" else "sorted",
            seed=hp.seed,
            num_replicas=world,
            rank=rank,
            weights=self._balanced_weights(dataset) if split == "train" and hp.sampler == "balanced" else None,
        )

    def train_batches(self) -> int:
        """This process's training batches per epoch, known once ``setup("fit")`` has run."""
        return len(self._batch_sampler("train"))

    def _balanced_weights(self, dataset: TokenizedDataset) -> list[float]:
        """Each training text's weight in a class-balanced draw: one over its class's count."""
        if self.task_kind != SingleLabel.name:
            raise UserError(f"--data.sampler balanced draws classes equally: a {self.task_kind} task has none to draw")
        counts = Counter(dataset.labels)
        return [1 / counts[label] for label in dataset.labels]

    def train_dataloader(self) -> DataLoader:
        loader = self._loader("train")
        if self._resume:
            sampler, state = loader.batch_sampler, self._resume
            if state["batches_done"] < len(sampler):
                sampler.set_epoch(state["epoch"])
                sampler.skip_next(state["batches_done"])
            else:
                sampler.set_epoch(state["epoch"] + 1)
            self._resume = {}
        return loader

    def state_dict(self) -> dict:
        """Where training stands in its epoch, saved in checkpoints: a run resumed from one then
        trains on exactly the batches the uninterrupted run would have, in the same order."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores this before it first asks for the training data."""
        self._resume = dict(state_dict)

    @property
    def validates(self) -> bool:
        """Whether there is validation data (a ``val_file``, or a share held out of the training
        data) and the trainer reads it: with ``--trainer.limit_val_batches 0`` it is not tokenized."""
        hp = self.hparams
        off = self.trainer is not None and self.trainer.limit_val_batches == 0
        if off or not (hp.val_file or hp.val_fraction):
            return False
        return bool(hp.val_file or hp.num_folds or not hp.min_val_texts or len(self._table("val")))

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if self.validates else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")


def has_label_sets(labels: list) -> bool:
    """Whether any label is a set of labels (a JSON list), which makes the data multi-label."""
    return any(isinstance(label, tuple) for label in labels)


@cache
def _fingerprint(path: Path) -> str:
    return fingerprint(path)
