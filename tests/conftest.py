"""Tiny offline fixtures the tests make themselves: a random BERT, aclImdb copies, CSV and JSONL tables."""

from __future__ import annotations

import json
import os
import random
import tarfile
from pathlib import Path

import pytest


def pytest_configure(config) -> None:
    """One thread for torch, here and in every `imdb` a test starts: `make test` runs two workers on
    two cores, and OpenMP threads of two processes spin against each other (the suite took 8.5 minutes
    on a 2-core EPYC, 9.7 without this). Set before any test module imports torch."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")


LONGEST_FIRST = (
    "test_real_data.py", "tuning/test_sweep.py", "tasks/test_commands.py", "test_cli.py",
    "deploy/serving/test_serve.py", "test_loggers.py", "test_docs.py", "deploy/test_export.py", "deploy/test_onnx.py",
)  # fmt: skip
"""The test files that take longest (`pytest --durations 30` tells), longest first."""


def pytest_collection_modifyitems(config, items) -> None:
    """`make test` deals whole files out to two workers in collection order: the longest files go
    first, so that none starts last and runs alone while the other worker idles."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    root = Path(__file__).parent
    items.sort(key=lambda item: rank.get(item.path.relative_to(root).as_posix(), len(rank)))


POSITIVE = "great wonderful moving brilliant loved superb charming".split()
NEGATIVE = "awful boring dull terrible hated waste clumsy".split()
NEUTRAL = "the film movie plot actor scene story music and was a it this i".split()


def review(words: list[str], rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(words + NEUTRAL) for _ in range(length))


def write_aclimdb(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """An aclImdb tree: {train,test}/{neg,pos}/<id>_<rating>.txt with short synthetic reviews."""
    rng = random.Random(seed)
    for split in ("train", "test"):
        for folder, words, rating in (("neg", NEGATIVE, 2), ("pos", POSITIVE, 9)):
            directory = root / "aclImdb" / split / folder
            directory.mkdir(parents=True)
            for i in range(per_class):
                text = review(words, rng, rng.randint(5, 40)).replace(" and ", " <br /><br />and ", 1)
                (directory / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    (root / "aclImdb" / "README").write_text("synthetic aclImdb for tests\n")
    return root / "aclImdb"


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory) -> Path:
    return write_aclimdb(tmp_path_factory.mktemp("imdb"))


@pytest.fixture(scope="session")
def imdb_archive(imdb_dir: Path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(imdb_dir, arcname="aclImdb")
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A randomly initialised (seeded) 2-layer, 32-wide BERT with a WordPiece vocabulary of the fixture words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(POSITIVE + NEGATIVE + NEUTRAL)), *letters]
    vocab = list(dict.fromkeys(vocab + [f"##{c}" for c in letters] + list(".,!?'<>/")))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(str(path / "vocab.txt"), do_lower_case=True)  # `vocab` in v5, `vocab_file` in v4
    assert len(tokenizer) == len(vocab)
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():  # the same weights whichever tests ran before in this process
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory, tiny_encoder) -> Path:
    """A randomly initialised 2-layer, 32-wide DistilBERT on the tiny BERT's vocabulary: the reference
    architecture, whose MLP head is ``DistilBertForSequenceClassification``."""
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertModel

    path = tmp_path_factory.mktemp("tiny-distilbert")
    tokenizer = BertTokenizerFast.from_pretrained(tiny_encoder)
    tokenizer.save_pretrained(path)
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
    )
    DistilBertModel(config).save_pretrained(path)
    return path


CKPT = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
"""The checkpoint of :func:`fitted_run`, relative to its directory."""


@pytest.fixture(scope="session")
def fitted_run(tmp_path_factory, tiny_encoder, imdb_archive) -> Path:
    """A directory with a tiny classifier fitted (:data:`CKPT`) and tested, and ``reviews.txt`` to predict:
    one fit for the tests of export, ONNX and serving, which write only beside it. BERT's own head
    (``--model.head auto``), so that the export is transformers' own class; the shipped head's export
    is tested in ``tests/deploy/test_transformers_model.py`` and ``tests/test_real_data.py``."""
    from tests.commands import CONFIGS, imdb

    workdir = tmp_path_factory.mktemp("fitted")
    imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 24, "--data.batch_size", 4, "--trainer.max_epochs", 2,
        "--model.head", "auto", "--model.pooling", "cls", "--model.head_warm_start", 0,
        "--trainer.default_root_dir", "runs", "--data.cache_dir", "cache", cwd=workdir,
    )  # fmt: skip
    imdb("test", "--ckpt_path", CKPT, "--trainer.logger", "false", cwd=workdir)
    # Some reviews longer than max_length, so that truncation is part of every round trip.
    texts = [f"{'great moving film and ' * (i % 9)}{'dull plot ' * (i % 4)}scene {i}" for i in range(30)]
    (workdir / "reviews.txt").write_text("\n".join(texts) + "\n")
    return workdir


def _rows(n: int, labels: list[str], seed: int) -> list[dict]:
    rng = random.Random(seed)
    words = {"neg": NEGATIVE, "pos": POSITIVE, "neutral": NEUTRAL}
    return [{"text": review(words[label], rng, 12), "label": label} for label in labels for _ in range(n)]


@pytest.fixture
def table_files(tmp_path: Path) -> dict[str, Path]:
    """Three-class train/val/test tables: train as CSV, val as JSON Lines, test as TSV."""
    import csv

    labels = ["pos", "neg", "neutral"]
    paths = {"train": tmp_path / "train.csv", "val": tmp_path / "val.jsonl", "test": tmp_path / "test.tsv"}
    with open(paths["train"], "w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"])
        writer.writeheader()
        writer.writerows(_rows(8, labels, 1))
    paths["val"].write_text("".join(json.dumps(row) + "\n" for row in _rows(3, labels, 2)))
    with open(paths["test"], "w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "label"], delimiter="\t")
        writer.writeheader()
        writer.writerows(_rows(3, labels, 3))
    return paths
