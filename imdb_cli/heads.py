"""The classification heads a model trains on its encoder, and how a trained one is read back.

- ``mlp``: the reference recipe's head: the last layer's [CLS] vector (or the mean of its token
  vectors: ``pooling``) through Linear → ReLU → Dropout → Linear. Its two layers are named as
  DistilBERT's (``pre_classifier``, ``classifier``) wherever a directory holds them: on DistilBERT,
  with the encoder's width and [CLS], it is ``DistilBertForSequenceClassification``.
- ``auto``: the head transformers' ``AutoModelForSequenceClassification`` builds for the encoder's
  architecture (BERT and MiniLM: the pooler, dropout and a Linear; RoBERTa: its classification head;
  DistilBERT: the MLP above). The model is then that class, which every Hugging Face tool loads whole.

A directory saved by ``save_pretrained`` of a ``*ForSequenceClassification`` model (an ``imdb
export`` or anyone's) is a *trained classifier*: its head and labels come along. ``transformers`` is
imported inside the functions only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from imdb_cli import encoders
from imdb_cli.errors import UserError

HeadKind = Literal["mlp", "auto"]
Pooling = Literal["cls", "mean"]

MLP_LAYERS = {"pre_classifier": "0", "classifier": "3"}
"""The MLP's two Linear layers as a directory names them, and as ``nn.Sequential`` numbers them."""

CLASSIFIER_DROPOUT_KEYS = ("classifier_dropout", "seq_classif_dropout", "cls_dropout")
"""Config names of the dropout before a head's output layer (BERT and RoBERTa family, DistilBERT, DeBERTa)."""

REMOTE_CLASS = "MLPHeadForSequenceClassification"
"""The class of :mod:`imdb_cli.deploy.modeling_imdb_cli`: the MLP head on an encoder without one of its own."""


def is_trained_classifier(config) -> bool:
    """Whether a config belongs to a directory of a whole sequence classifier, head included."""
    return any(name.endswith("ForSequenceClassification") for name in getattr(config, "architectures", None) or [])


def default_kind(config) -> HeadKind:
    """``auto`` for a trained classifier of transformers' own classes, else ``mlp``."""
    architectures = getattr(config, "architectures", None) or []
    return "auto" if is_trained_classifier(config) and REMOTE_CLASS not in architectures else "mlp"


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """``(batch, width)``: the first token's vector of ``hidden`` (``cls``), or the mean of the
    vectors of the tokens ``attention_mask`` keeps (``mean``, sentence-transformers' pooling)."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def mlp(width: int, hidden: int, dropout: float, outputs: int) -> nn.Sequential:
    """Linear → ReLU → Dropout → Linear; with ``hidden`` 0, Dropout → Linear alone (a linear
    classifier of the vector, as setfit's logistic regression), numbered alike so that the output
    layer keeps its name."""
    if not hidden:
        return nn.Sequential(nn.Identity(), nn.Identity(), nn.Dropout(dropout), nn.Linear(width, outputs))
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, outputs))


def check_labels(config, name: str, label_names: list[str], regression: bool) -> None:
    """A trained classifier keeps its head only for the labels it was trained on, in its order."""
    if regression:
        if config.num_labels != 1:
            raise UserError(f"{name} is a classifier of {config.num_labels} labels, not a regression: --model.head mlp")
        return
    theirs = [config.id2label[i] for i in range(config.num_labels)]
    if theirs != list(label_names):
        raise UserError(
            f"{name} predicts {', '.join(map(str, theirs))}; this run's labels are {', '.join(label_names)}: "
            "give its label names to the data, or --model.head mlp to train a new head on its encoder"
        )


def build_auto(name: str, config, pretrained: bool, outputs: int, dropout: float):
    """The architecture's own ``*ForSequenceClassification`` with ``outputs`` outputs: a trained
    classifier's weights, or the encoder's with a new head, or (not ``pretrained``) none."""
    from transformers import AutoModelForSequenceClassification

    if is_trained_classifier(config) and config.num_labels != outputs:
        raise UserError(f"{name} has {config.num_labels} outputs, not {outputs}: --model.head mlp trains a new head")
    config.num_labels = outputs
    for key in CLASSIFIER_DROPOUT_KEYS:
        if hasattr(config, key):
            setattr(config, key, dropout)
    try:
        if not pretrained:
            return AutoModelForSequenceClassification.from_config(config)
        with encoders.quiet_loading():
            return AutoModelForSequenceClassification.from_pretrained(encoders.resolve(name), config=config)
    except ValueError as err:  # an architecture transformers has no sequence classifier for
        if "Unrecognized configuration class" in str(err):
            raise UserError(f"--model.head auto: transformers has no sequence classifier for {name}") from None
        raise


def head_modules(classifier: nn.Module) -> nn.ModuleDict:
    """The head of a ``*ForSequenceClassification`` model: its parts outside the encoder, and the
    encoder's pooler where the head reads it (BERT's), first."""
    base = classifier.base_model
    parts = {name: child for name, child in classifier.named_children() if child is not base}
    pooler = getattr(base, "pooler", None)
    return nn.ModuleDict({"pooler": pooler, **parts} if isinstance(pooler, nn.Module) else parts)


def output_layer(head: nn.Module) -> nn.Linear:
    """The head's last Linear: the one that gives the logits."""
    linears = [module for module in head.modules() if isinstance(module, nn.Linear)]
    return linears[-1]


def trained_mlp(path: str) -> dict[str, torch.Tensor] | None:
    """An MLP head's weights in a directory, as ``nn.Sequential`` names them: from ``head.safetensors``
    (earlier exports) or from the ``pre_classifier`` and ``classifier`` of its
    ``model.safetensors``; ``None`` where there is no such head."""
    from safetensors import safe_open

    directory = Path(path).expanduser()
    legacy = directory / "head.safetensors"
    if legacy.is_file():
        from safetensors.torch import load_file

        return load_file(legacy)
    weights = directory / "model.safetensors"
    config = directory / "config.json"
    if not (weights.is_file() and config.is_file()):
        return None
    saved = json.loads(config.read_text())
    if saved.get("model_type") != "distilbert" and REMOTE_CLASS not in saved.get("architectures", []):
        return None
    with safe_open(weights, "pt") as f:
        keys = set(f.keys())
        wanted = {f"{layer}.{p}": f"{index}.{p}" for layer, index in MLP_LAYERS.items() for p in ("weight", "bias")}
        if saved.get("head_hidden") == 0:  # a linear head: the output layer only
            wanted = {theirs: ours for theirs, ours in wanted.items() if theirs.startswith("classifier.")}
        if not wanted.keys() <= keys:
            return None
        return {ours: f.get_tensor(theirs) for theirs, ours in wanted.items()}
