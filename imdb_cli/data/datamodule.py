"""The DataModule: labelled texts from any source to tokenized, dynamically padded batches."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from imdb_cli.data.batching import LineDataset, PadCollate, TokenizedDataset
from imdb_cli.data.download import IMDB_URL, cached_path, download, is_url
from imdb_cli.data.sources import ACLIMDB_LABELS, LabeledTexts, label_names_of, read_aclimdb, read_lines, read_table
from imdb_cli.data.tokenization import Encoder, Truncation
from imdb_cli.encoders import load_tokenizer
from imdb_cli.errors import UserError


class IMDBDataModule(pl.LightningDataModule):
    """IMDB reviews, or any CSV/JSON Lines text classification set, as tokenized batches.

    Labelled data comes either from ``source`` (aclImdb: a URL, a ``.tar.gz`` or a directory) or,
    when any of ``train_file``/``val_file``/``test_file`` is given, from those tables. Without a
    ``val_file`` the training data is split seeded into train and validation; the test split is
    always used whole.

    Args:
        source: aclImdb data: an ``http(s)://`` URL of ``aclImdb_v1.tar.gz`` (downloaded once into
            ``cache_dir``), a local ``.tar.gz`` of it, or an extracted ``aclImdb/`` directory.
        train_file: CSV/TSV/JSON Lines file of training texts and labels; replaces ``source``.
        val_file: validation table; without it ``val_fraction`` of the training data is held out.
        test_file: test table.
        predict_file: UTF-8 text, one input per line (blank lines skipped); ``-`` reads stdin.
        text_column: column of the tables holding the text.
        label_column: column of the tables holding the label.
        label_names: class names in label-id order; by default fixed by aclImdb
            (negative, positive) or read from the training table, sorted.
        tokenizer: tokenizer name or directory; linked to ``model.encoder``, not set on its own.
        max_length: most tokens per text, special tokens included.
        truncation: which tokens of a longer text to keep: ``head``, ``tail`` or ``head_tail``.
        head_tokens: with ``head_tail``, how many leading tokens to keep; the rest come from the end.
        batch_size: texts per batch, for training and evaluation alike.
        val_fraction: share of the training data held out for validation when there is no ``val_file``.
        max_train_samples: seeded random subset of the training split, for quick runs.
        max_val_samples: seeded random subset of the validation split.
        max_test_samples: seeded random subset of the test split.
        seed: seed of the train/validation split and of the subsets, apart from the training seed.
        num_workers: DataLoader worker processes.
        cache_dir: where downloads are kept.
        sha256: expected SHA-256 of a downloaded archive; the official aclImdb URL's is built in.
    """

    def __init__(
        self,
        source: str = IMDB_URL,
        train_file: str | None = None,
        val_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        label_names: list[str] | None = None,
        tokenizer: str = "distilbert-base-uncased",
        max_length: int = 512,
        truncation: Truncation = "head",
        head_tokens: int = 128,
        batch_size: int = 16,
        val_fraction: float = 0.25,
        max_train_samples: int | None = None,
        max_val_samples: int | None = None,
        max_test_samples: int | None = None,
        seed: int = 42,
        num_workers: int = 0,
        cache_dir: str = "~/.cache/imdb-cli",
        sha256: str | None = None,
    ) -> None:
        super().__init__()
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        # The model records the label names (resolved, not None): one owner, no clash in logged hparams.
        self.save_hyperparameters(ignore=["label_names"])
        self._label_names = label_names
        self._tables: dict[str, LabeledTexts] = {}
        self.encode: Encoder | None = None
        self.datasets: dict[str, TokenizedDataset | LineDataset] = {}

    @property
    def uses_tables(self) -> bool:
        hp = self.hparams
        return any((hp.train_file, hp.val_file, hp.test_file))

    @property
    def label_names(self) -> list[str]:
        """Class names in label-id order (the model's head is sized from these)."""
        if self._label_names is None:
            if not self.uses_tables:
                self._label_names = list(ACLIMDB_LABELS.values())
            else:
                split = "train" if self.hparams.train_file else "val" if self.hparams.val_file else "test"
                self._label_names = label_names_of(self._table(split).labels)
        return self._label_names

    def prepare_data(self) -> None:
        """Download the archive when ``source`` is a URL; predicting needs no labelled data."""
        predicting = self.trainer is not None and self.trainer.state.fn == "predict"
        if not self.uses_tables and not predicting and is_url(self.hparams.source):
            download(self.hparams.source, self._cache_dir, self.hparams.sha256)

    def setup(self, stage: str) -> None:
        """Read, split, subsample and tokenize what ``stage`` needs."""
        if self.encode is None:
            tokenizer = load_tokenizer(self.hparams.tokenizer)
            hp = self.hparams
            self.encode = Encoder(tokenizer, hp.max_length, hp.truncation, hp.head_tokens)
            self.collate = PadCollate(tokenizer.pad_token_id)
        if stage in ("fit", "validate"):
            self._tokenize("train", self.hparams.max_train_samples)
            self._tokenize("val", self.hparams.max_val_samples)
        elif stage == "test":
            self._tokenize("test", self.hparams.max_test_samples)
        elif stage == "predict":
            if not self.hparams.predict_file:
                raise UserError("nothing to predict: pass --data.predict_file FILE (or - for stdin)")
            path = self.hparams.predict_file
            if path != "-" and not Path(path).is_file():
                raise UserError(f"predict file {path} does not exist")
            self.datasets["predict"] = LineDataset(partial(read_lines, path), self.encode)

    def _tokenize(self, split: str, limit: int | None) -> None:
        if split in self.datasets:
            return
        data = self._table(split)
        if limit is not None and limit < len(data):
            data = data.subset(sorted(random.Random(f"{self.hparams.seed}:{split}").sample(range(len(data)), limit)))
        ids = {name: i for i, name in enumerate(self.label_names)}
        unknown = sorted(set(data.labels) - ids.keys())
        if unknown:
            raise UserError(f"{split} data has label {unknown[0]!r}, not one of the model's: {', '.join(ids)}")
        self.datasets[split] = TokenizedDataset(self.encode(data.texts), [ids[label] for label in data.labels])

    def _table(self, split: str) -> LabeledTexts:
        """The raw texts of ``split``, read once: train and val come from one seeded split."""
        if split not in self._tables:
            hp = self.hparams
            if split == "test":
                self._tables["test"] = self._read(hp.test_file, "test")
            elif hp.val_file:
                self._tables["train"] = self._read(hp.train_file, "train")
                self._tables["val"] = self._read(hp.val_file, "val")
            else:
                data = self._read(hp.train_file, "train")
                order = list(range(len(data)))
                random.Random(hp.seed).shuffle(order)
                n_val = round(len(order) * hp.val_fraction)
                self._tables["val"] = data.subset(sorted(order[:n_val]))
                self._tables["train"] = data.subset(sorted(order[n_val:]))
        return self._tables[split]

    def _read(self, table: str | None, split: str) -> LabeledTexts:
        hp = self.hparams
        if self.uses_tables:
            if table is None:
                raise UserError(f"no {split} data: pass --data.{split}_file")
            return read_table(Path(table).expanduser(), hp.text_column, hp.label_column)
        source = hp.source
        if is_url(source):
            path = cached_path(source, self._cache_dir)
            if not path.is_file():
                path = download(source, self._cache_dir, hp.sha256)
        else:
            path = Path(source).expanduser()
        return read_aclimdb(path, "test" if split == "test" else "train")

    @property
    def _cache_dir(self) -> Path:
        return Path(self.hparams.cache_dir).expanduser()

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        workers = self.hparams.num_workers if split != "predict" else 0
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            collate_fn=self.collate,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
