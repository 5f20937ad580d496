"""A trained classifier as a transformers sequence-classification model, which ``save_pretrained`` writes
and ``AutoModelForSequenceClassification`` (and so ``pipeline("text-classification")``) loads whole.

- an ``auto`` head: the model already is its architecture's ``*ForSequenceClassification``;
- the ``mlp`` head on DistilBERT at the encoder's width: ``DistilBertForSequenceClassification``,
  weight for weight (``pre_classifier``, ``classifier``, ``seq_classif_dropout``);
- the ``mlp`` head on any other encoder: :class:`~imdb_cli.deploy.modeling_imdb_cli.MLPHeadForSequenceClassification`,
  whose file the export carries (``trust_remote_code``).

The config carries what every Hugging Face tool reads: ``architectures``, ``id2label`` and
``label2id``, and ``problem_type`` (``single_label_classification``, ``multi_label_classification``
or ``regression``), by which ``pipeline`` applies softmax, sigmoid or nothing. A regression's
target scale is folded into the output layer: the model outputs the target itself.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
from torch import nn

from imdb_cli import heads

PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}
REMOTE_FILE = Path(__file__).with_name("modeling_imdb_cli.py")


def transformers_model(model) -> nn.Module:
    """A copy of ``model``'s encoder and head as one transformers model, in evaluation mode."""
    hf = copy.deepcopy(model.classifier) if model.classifier is not None else _mlp_model(model)
    output = heads.output_layer(heads.head_modules(hf))
    with torch.no_grad():
        weight, bias = model.task.export_output_layer(output.weight, output.bias)
        output.weight.copy_(weight)
        output.bias.copy_(bias)
    config = hf.config
    config.id2label = dict(enumerate(model.label_names))
    config.label2id = {name: i for i, name in enumerate(model.label_names)}
    config.problem_type = PROBLEM_TYPES[model.task.name]
    config.architectures = [type(hf).__name__]
    return hf.eval()


def _mlp_model(model) -> nn.Module:
    """The MLP head and its encoder as DistilBERT's classifier, or as imdb-cli's own class."""
    encoder, head = model.encoder, model.head
    config = copy.deepcopy(encoder.config)
    config.num_labels = head[3].out_features
    width = encoder.config.hidden_size
    hidden = head[0].out_features if isinstance(head[0], nn.Linear) else 0  # 0: a linear head
    pooling = model.hparams.pooling
    if config.model_type == "distilbert" and hidden == width and pooling == "cls":
        from transformers import DistilBertForSequenceClassification

        config.seq_classif_dropout = head[2].p
        hf = DistilBertForSequenceClassification(config)
    else:
        from imdb_cli.deploy.modeling_imdb_cli import MLPHeadForSequenceClassification

        config.head_hidden, config.head_dropout, config.head_pooling = hidden, head[2].p, pooling
        config.auto_map = {"AutoModelForSequenceClassification": f"{REMOTE_FILE.stem}.{heads.REMOTE_CLASS}"}
        hf = MLPHeadForSequenceClassification(config)
    state = {f"{hf.base_model_prefix}.{k}": v for k, v in encoder.state_dict().items()}
    ours = head.state_dict()
    for name, index in heads.MLP_LAYERS.items():
        state |= {f"{name}.{p}": ours[f"{index}.{p}"] for p in ("weight", "bias") if f"{index}.{p}" in ours}
    hf.load_state_dict(state)
    return hf


def save(hf: nn.Module, directory: Path) -> None:
    """``save_pretrained`` in safetensors, with the modeling file a remote-code model needs."""
    from imdb_cli.encoders import quiet_loading

    with quiet_loading():  # no bar for writing the one shard
        hf.save_pretrained(directory, safe_serialization=True)
    if getattr(hf.config, "auto_map", None):
        shutil.copy(REMOTE_FILE, directory / REMOTE_FILE.name)
