"""`imdb export`: a trained classifier as a directory that transformers loads whole, usable without this tool.

The directory holds
- ``config.json`` and ``model.safetensors``: encoder and head as one transformers sequence classifier
  (:mod:`imdb_cli.deploy.transformers_model`), with ``id2label``, ``label2id`` and ``problem_type``;
  ``modeling_imdb_cli.py`` beside them where the head is imdb-cli's MLP on an encoder other than
  DistilBERT (``trust_remote_code``);
- or, with ``--format onnx``, ``model.onnx``: encoder and head as one graph for ONNX Runtime
  (:mod:`imdb_cli.deploy.onnx_export`), beside that ``config.json``;
- the tokenizer files;
- ``classifier.json``: what a transformers config does not hold: the maximum length and
  truncation, a multi-label model's thresholds, the text column(s), the head kind and where it came from;
- ``README.md``: a model card (``huggingface_hub.ModelCard``) with the run's test metrics, when
  ``imdb test`` recorded them.

``imdb predict``, ``test``, ``serve --model_dir DIR`` and ``fit --model_dir DIR`` read it back; so
does ``transformers.pipeline`` (:data:`PLAIN_USE`, also in docs/guides/export.md), or ONNX Runtime
(:data:`ONNX_USE`). Exports written before the head moved into ``model.safetensors`` (a bare
encoder and ``head.safetensors``) still load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from imdb_cli import __version__, heads
from imdb_cli.deploy.model_card import model_card
from imdb_cli.deploy.transformers_model import PROBLEM_TYPES, save, transformers_model
from imdb_cli.encoders import load_tokenizer
from imdb_cli.errors import UserError
from imdb_cli.report import METRICS_FILE, report_dir
from imdb_cli.staging import publish, staged_dir

CLASSIFIER_FILE = "classifier.json"

ExportFormat = Literal["safetensors", "onnx"]
Quantization = Literal["int8"]

PLAIN_USE = """\
from transformers import pipeline

classify = pipeline("text-classification", model="exported", top_k=None, trust_remote_code=True)
print(classify(["A moving, beautifully acted film.", "Dull, predictable and far too long."]))
"""
"""Prediction with transformers alone: every label's probability (a multi-label model's are
independent sigmoids; its thresholds are in classifier.json), or a regression's value. ``pipeline``
keeps a long text's head; ``imdb`` keeps what ``truncation`` in classifier.json says (head and tail
by default), so texts longer than ``max_length`` tokens can score differently."""

ONNX_USE = """\
import json

import numpy as np
import onnxruntime as ort
from transformers import AutoConfig, AutoTokenizer

path = "exported"  # the directory `imdb export --format onnx` wrote
meta, config = json.load(open(f"{path}/classifier.json")), AutoConfig.from_pretrained(path)
tokenizer, labels = AutoTokenizer.from_pretrained(path), config.id2label
session = ort.InferenceSession(f"{path}/model.onnx", providers=["CPUExecutionProvider"])

texts = ["A moving, beautifully acted film.", "Dull, predictable and far too long."]
# One text per run, unpadded: the graph has no padding mask. A pair model reads tokenizer(first, second, ...).
for text in texts:
    tokens = tokenizer(text, truncation=True, max_length=meta["max_length"], return_tensors="np")
    logits, _ = session.run(None, {i.name: tokens[i.name] for i in session.get_inputs()})
    row = logits[0]
    if config.problem_type == "regression":
        print(round(float(row[0]), 4), text)
    elif config.problem_type == "multi_label_classification":
        probs = 1 / (1 + np.exp(-row))
        print([labels[i] for i, (p, t) in enumerate(zip(probs, meta["thresholds"])) if p >= t], text)
    else:
        p = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        print(labels[int(p.argmax())], round(float(p.max()), 4), text)
"""
"""Prediction from an ONNX export with ONNX Runtime and a tokenizer alone."""

TASKS = {problem: task for task, problem in PROBLEM_TYPES.items()}


def is_trained_directory(path: str | Path) -> bool:
    """Whether ``path`` holds a trained classifier: an ``imdb export``, or any transformers sequence classifier."""
    directory = Path(path).expanduser()
    return (directory / CLASSIFIER_FILE).is_file() or heads.is_trained_classifier(_read_config(directory))


def read_classifier(path: str | Path) -> dict:
    """``classifier.json`` of an exported directory (empty for a classifier saved by transformers),
    or a one-line error for a directory that holds no trained classifier."""
    directory = Path(path).expanduser()
    file = directory / CLASSIFIER_FILE
    if not file.is_file():
        if heads.is_trained_classifier(_read_config(directory)):
            return {}
        raise UserError(
            f"{path} is not a directory written by imdb export, nor a transformers sequence classifier: "
            f"it has no {CLASSIFIER_FILE}, and no config.json that names a *ForSequenceClassification"
        )
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {file}: {err}") from None


def _read_config(directory: Path) -> SimpleNamespace:
    """``config.json`` as attributes (``architectures`` and the rest), empty where there is none."""
    try:
        return SimpleNamespace(**json.loads((directory / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return SimpleNamespace()


def exported_defaults(path: str | Path, encoder: bool = True) -> dict:
    """The model and data settings of a trained classifier's directory, as dotted parser keys:
    from ``config.json`` (labels, problem type, head) and, for an ``imdb export``, from
    ``classifier.json`` (truncation, thresholds, text columns; label names and head width of
    earlier exports). An ONNX graph computes in its own precision, whatever PyTorch's autocast
    would do: it runs in ``32-true``. ``encoder``: include ``model.encoder`` itself."""
    directory = Path(path).expanduser()
    meta = read_classifier(directory)
    config = vars(_read_config(directory))
    task = (
        meta.get("task")
        or TASKS.get(config.get("problem_type"))
        or ("regression" if config.get("num_labels", len(config.get("id2label", {}))) == 1 else "classification")
    )
    id2label = config.get("id2label") or {}
    names = meta.get("label_names") or [id2label[str(i)] for i in range(len(id2label))]
    legacy = (directory / "head.safetensors").is_file()  # exports before the head was in model.safetensors
    head = meta.get("head") or ("mlp" if legacy else heads.default_kind(SimpleNamespace(**config)))
    defaults = {"model.encoder": str(path)} if encoder else {}
    defaults |= {"model.head": head, "data.task": task}
    if names:
        defaults["data.label_names"] = names
    hidden = next((h for h in (meta.get("head_hidden"), config.get("head_hidden")) if h is not None), None)
    if head == "mlp" and hidden is not None:
        defaults["model.head_hidden"] = hidden
    if head == "mlp" and config.get("head_pooling"):
        defaults["model.pooling"] = config["head_pooling"]
    dropout = meta.get("dropout", next((config[k] for k in DROPOUT_KEYS if config.get(k) is not None), None))
    if dropout is not None:
        defaults["model.dropout"] = dropout
    for key in ("max_length", "truncation", "head_tokens", "text_column"):
        if key in meta:
            defaults[f"data.{key}"] = meta[key]
    positions = config.get("max_position_embeddings")
    if "max_length" not in meta and positions and positions < 512:
        defaults["data.max_length"] = positions
    if "thresholds" in meta:
        defaults["model.threshold"] = meta["thresholds"]
    if meta.get("model_format") == "onnx":
        defaults["trainer.precision"] = "32-true"
    return defaults


DROPOUT_KEYS = ("head_dropout", *heads.CLASSIFIER_DROPOUT_KEYS)
"""Where a directory's config keeps its head's dropout: imdb-cli's MLP class, then transformers' heads."""


def export(
    model,
    datamodule,
    ckpt_path: str,
    output_dir: str,
    weights_only: bool | None = True,
    format: ExportFormat = "safetensors",
    quantize: Quantization | None = None,
) -> Path:
    """Write the classifier of checkpoint ``ckpt_path`` into ``output_dir``, in ``format``.

    ``model`` and ``datamodule`` carry the checkpoint's settings (the CLI makes them its
    defaults). The directory is built beside its destination and moved into place only when
    complete; an earlier export there is replaced, any other non-empty directory is refused.
    """
    out = Path(output_dir).expanduser()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / CLASSIFIER_FILE).is_file())):
        raise UserError(f"--output_dir {output_dir} exists and is not an earlier export: choose another directory")
    if quantize and format != "onnx":
        raise UserError(f"--quantize {quantize} needs --format onnx")
    if format == "onnx":
        from imdb_cli.deploy.onnx_runtime import require_onnxruntime

        require_onnxruntime()
    checkpoint = model.load_trained(ckpt_path, weights_only=weights_only is not False)
    hp = datamodule.hparams
    meta = {
        "format": 2,
        "model_format": format,
        "task": model.task.name,
        "head": model.hparams.head,
        **model.task.export_meta(),
        "max_length": hp.max_length,
        "truncation": hp.truncation,
        "head_tokens": hp.head_tokens,
        "text_column": hp.text_column if isinstance(hp.text_column, str) else list(hp.text_column),
        "base_encoder": model.hparams.encoder,
        "checkpoint": str(ckpt_path),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "imdb_cli_version": __version__,
    }
    tested = report_dir(ckpt_path) / METRICS_FILE
    test = json.loads(tested.read_text()) if tested.is_file() else None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged_dir(out)
    try:
        hf = transformers_model(model)
        if format == "onnx":
            from imdb_cli.deploy.onnx_export import write_onnx

            hf.config.save_pretrained(tmp)
            meta["onnx"] = write_onnx(hf, tmp, quantize, pairs=isinstance(meta["text_column"], list))
        else:
            save(hf, tmp)
        tokenizer = load_tokenizer(hp.tokenizer)
        tokenizer.save_pretrained(tmp)
        (tmp / CLASSIFIER_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        card = model_card(meta, hf.config, dict(hp), test, out.name, tokenizer.num_special_tokens_to_add())
        card.save(tmp / "README.md")
        publish(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
