"""`imdb export`: a trained classifier as a self-contained directory, usable without this tool.

The directory holds
- ``config.json`` and ``model.safetensors``: the fine-tuned encoder, as ``save_pretrained`` writes it;
- ``head.safetensors``: the classification head (Linear, ReLU, Dropout, Linear on the [CLS] vector);
- or, with ``--format onnx``, ``model.onnx``: encoder and head as one graph for ONNX Runtime
  (:mod:`imdb_cli.onnx_export`), beside the encoder's ``config.json``;
- the tokenizer files;
- ``classifier.json``: label names, head width, maximum length and truncation, and the format;
- ``README.md``: a model card with the run's test metrics, when ``imdb test`` recorded them.

``imdb predict``, ``test`` and ``serve --model_dir DIR`` read it back; so do a few lines of plain
transformers and torch (:data:`PLAIN_USE`, also in docs/guides/export.md), or of ONNX Runtime
(:data:`ONNX_USE`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import torch

from imdb_cli import __version__
from imdb_cli.encoders import load_tokenizer
from imdb_cli.errors import UserError
from imdb_cli.report import METRICS_FILE, report_dir
from imdb_cli.staging import publish, staged_dir

CLASSIFIER_FILE = "classifier.json"
HEAD_FILE = "head.safetensors"

ExportFormat = Literal["safetensors", "onnx"]
Quantization = Literal["int8"]

PLAIN_USE = """\
import json

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

path = "exported"  # the directory `imdb export` wrote
meta = json.load(open(f"{path}/classifier.json"))
tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
width, hidden, labels = encoder.config.hidden_size, meta["head_hidden"], meta["label_names"]
head = torch.nn.Sequential(
    torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(), torch.nn.Linear(hidden, len(labels))
)
head.load_state_dict(load_file(f"{path}/head.safetensors"))
head.eval()

texts = ["A moving, beautifully acted film.", "Dull, predictable and far too long."]
# A pair model (two names in meta["text_column"]) reads tokenizer(firsts, seconds, ...) instead.
batch = tokenizer(texts, padding=True, truncation=True, max_length=meta["max_length"], return_tensors="pt")
with torch.no_grad():
    logits = head(encoder(**batch).last_hidden_state[:, 0])
for text, row in zip(texts, logits):
    if meta["task"] == "regression":  # the head outputs the target itself
        print(round(row[0].item(), 4), text)
    elif meta["task"] == "multi_label":  # every label whose probability reaches its threshold
        print([l for l, p, t in zip(labels, row.sigmoid().tolist(), meta["thresholds"]) if p >= t], text)
    else:
        p = row.softmax(-1)
        print(labels[p.argmax()], round(p.max().item(), 4), text)
"""
"""Prediction with transformers and torch alone. ``truncation=True`` keeps a long text's head; ``imdb``
keeps what ``truncation`` in classifier.json says (head and tail by default), so texts longer than
``max_length`` tokens can score differently."""

ONNX_USE = """\
import json

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

path = "exported"  # the directory `imdb export --format onnx` wrote
meta = json.load(open(f"{path}/classifier.json"))
tokenizer, labels = AutoTokenizer.from_pretrained(path), meta["label_names"]
session = ort.InferenceSession(f"{path}/model.onnx", providers=["CPUExecutionProvider"])

texts = ["A moving, beautifully acted film.", "Dull, predictable and far too long."]
# One text per run, unpadded: the graph has no padding mask. A pair model reads tokenizer(first, second, ...).
for text in texts:
    tokens = tokenizer(text, truncation=True, max_length=meta["max_length"], return_tensors="np")
    logits, _ = session.run(None, {i.name: tokens[i.name] for i in session.get_inputs()})
    row = logits[0]
    if meta["task"] == "regression":
        print(round(float(row[0]), 4), text)
    elif meta["task"] == "multi_label":
        probs = 1 / (1 + np.exp(-row))
        print([l for l, p, t in zip(labels, probs, meta["thresholds"]) if p >= t], text)
    else:
        p = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        print(labels[p.argmax()], round(float(p.max()), 4), text)
"""
"""Prediction from an ONNX export with ONNX Runtime and a tokenizer alone."""


def read_classifier(path: str | Path) -> dict:
    """``classifier.json`` of an exported directory, or a one-line error for anything else."""
    file = Path(path).expanduser() / CLASSIFIER_FILE
    if not file.is_file():
        raise UserError(f"{path} is not a directory written by imdb export: it has no {CLASSIFIER_FILE}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {file}: {err}") from None


def exported_defaults(path: str | Path) -> dict:
    """The model and data settings of an exported directory, as dotted parser keys. An ONNX graph
    computes in its own precision, whatever PyTorch's autocast would do: it runs in ``32-true``."""
    meta = read_classifier(path)
    defaults = {
        "model.encoder": str(path),
        "model.head_hidden": meta["head_hidden"],
        "model.dropout": meta["dropout"],
        "data.label_names": meta["label_names"],
        "data.max_length": meta["max_length"],
        "data.truncation": meta["truncation"],
        "data.head_tokens": meta["head_tokens"],
        "data.task": meta.get("task", "classification"),  # exports before task kinds were classifiers
    }
    if "thresholds" in meta:
        defaults["model.threshold"] = meta["thresholds"]
    if "text_column" in meta:
        defaults["data.text_column"] = meta["text_column"]
    if meta.get("model_format") == "onnx":
        defaults["trainer.precision"] = "32-true"
    return defaults


def load_head(path: str | Path) -> dict[str, torch.Tensor] | None:
    """The head weights of an exported directory; ``None`` for an encoder without them."""
    file = Path(path).expanduser() / HEAD_FILE
    if not file.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(file)


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
        from imdb_cli.onnx_runtime import require_onnxruntime

        require_onnxruntime()
    checkpoint = model.load_trained(ckpt_path, weights_only=weights_only is not False)
    hp = datamodule.hparams
    meta = {
        "format": 1,
        "model_format": format,
        "task": model.task.name,
        "label_names": list(model.label_names),
        **model.task.export_meta(),
        "head_hidden": model.head[0].out_features,
        "dropout": model.hparams.dropout,
        "max_length": hp.max_length,
        "truncation": hp.truncation,
        "head_tokens": hp.head_tokens,
        "base_encoder": model.hparams.encoder,
        "checkpoint": str(ckpt_path),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "imdb_cli_version": __version__,
    }
    meta["text_column"] = hp.text_column if isinstance(hp.text_column, str) else list(hp.text_column)
    tested = report_dir(ckpt_path) / METRICS_FILE
    test = json.loads(tested.read_text()) if tested.is_file() else None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged_dir(out)
    try:
        head = model.task.export_head(model.head)
        if format == "onnx":
            meta["onnx"] = _write_onnx(model, head, tmp, quantize, pairs=isinstance(meta["text_column"], list))
        else:
            from safetensors.torch import save_file

            model.encoder.save_pretrained(tmp, safe_serialization=True)
            save_file(head, tmp / HEAD_FILE)
        tokenizer = load_tokenizer(hp.tokenizer)
        tokenizer.save_pretrained(tmp)
        (tmp / CLASSIFIER_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        card = model_card(meta, hp, test, out.name, tokenizer.num_special_tokens_to_add())
        (tmp / "README.md").write_text(card)
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


def _write_onnx(model, head_state: dict[str, torch.Tensor], directory: Path, quantize: str | None, pairs: bool) -> dict:
    """The graph of encoder and head (with the exported head's weights), and the encoder's config."""
    import copy

    from imdb_cli.onnx_export import write_onnx

    head = copy.deepcopy(model.head)
    head.load_state_dict(head_state)
    model.encoder.config.save_pretrained(directory)
    return write_onnx(model, head.eval(), directory, quantize, pairs)


def model_card(meta: dict, data, test: dict | None, name: str, special_tokens: int = 2) -> str:
    """README.md of an export: what the model is, how it scored, how to use it.

    ``special_tokens`` is how many the tokenizer adds to a text ([CLS] and [SEP] for BERT).
    The card says the encoder alone is what transformers' ``AutoModel`` loads: it claims no
    ``pipeline_tag``, because ``pipeline("text-classification")`` would put a random head on it.
    """
    base = meta["base_encoder"]
    on_hub = not base.startswith(("pkg://", "/", ".", "~")) and base.count("/") <= 1
    # No pipeline_tag: transformers' pipeline("text-classification") would put a random head on the encoder.
    onnx = meta.get("model_format") == "onnx"
    lines = ["---", f"library_name: {'onnx' if onnx else 'transformers'}"]
    lines += [f"base_model: {base}"] if on_hub else []
    lines += ["tags: [imdb-cli, text-classification]", "---", ""]
    kind = {"multi_label": "multi-label text classification", "regression": "text regression"}
    what = kind.get(meta.get("task"), "text classification")
    lines += [f"# {name}", "", f"`{base}` fine-tuned for {what} by imdb-cli {meta['imdb_cli_version']}."]
    if onnx:
        quantized = " with int8 weights (dynamic quantization)" if meta["onnx"]["quantize"] == "int8" else ""
        lines[-1] += f" Exported as one ONNX graph, encoder and head, for ONNX Runtime{quantized}."
    outputs = "Predicts" if meta.get("task") == "regression" else "Labels"
    lines += [f"{outputs}: {', '.join(meta['label_names'])}. Reads at most {meta['max_length']} tokens of a text"]
    lines[-1] += f", special tokens included: longer texts keep {_kept(meta, special_tokens)}."
    lines += ["", "## Test results", ""]
    if test is None:
        lines += ["Not tested: `imdb test --ckpt_path CKPT` before `imdb export` records its metrics here."]
    else:
        lines += [f"On {test['samples']} test texts ({_describe(test.get('data'), 'test')}):", ""]
        if onnx:
            lines[-2] = lines[-2][:-1] + ", by the PyTorch checkpoint: `imdb test --model_dir` measures this graph):"
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in test["metrics"].items()]
        if "confusion_matrix" in test:
            lines += ["", "Confusion matrix (rows: true label, columns: predicted):", ""]
            names = test["label_names"]
            lines += ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
            rows = zip(names, test["confusion_matrix"], strict=True)
            lines += [f"| {label} | " + " | ".join(map(str, row)) + " |" for label, row in rows]
        if "per_label" in test:
            lines += ["", "Per label, at the thresholds in `classifier.json`:", ""]
            lines += ["| label | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
            for label, f in test["per_label"].items():
                lines += [f"| {label} | {f['precision']:.4f} | {f['recall']:.4f} | {f['f1']:.4f} | {f['support']} |"]
    lines += ["", "## Training", ""]
    lines += [f"- checkpoint: `{meta['checkpoint']}` (epoch {meta['epoch']}, {meta['global_step']} optimizer steps)"]
    lines += [f"- data: {_describe(dict(data), 'train')}, batch size {data['batch_size']}"]
    lines += ["", "## Use", "", "```bash", f"imdb predict --model_dir {name} --data.predict_file reviews.txt"]
    lines += ["```", ""]
    alone, snippet = ("ONNX Runtime", ONNX_USE) if onnx else ("transformers and torch", PLAIN_USE)
    lines += [f"With {alone} alone:", "", "```python", snippet.replace('"exported"', f'"{name}"')]
    lines += ["```", ""]
    return "\n".join(lines)


def _kept(meta: dict, special_tokens: int) -> str:
    """Which tokens of a longer text the model reads, as ``truncation`` works out at this length."""
    budget = meta["max_length"] - special_tokens
    if meta["truncation"] == "tail":
        return f"their last {budget} tokens"
    head = budget if meta["truncation"] == "head" else min(meta["head_tokens"], budget)
    return f"their first {budget} tokens" if head == budget else f"their first {head} and last {budget - head} tokens"


def _describe(data: dict | None, split: str) -> str:
    """Where a split came from, in words: its table, or the split of the aclImdb source."""
    if not data:
        return "data not recorded"
    keys = ("train_file", "val_file") if split == "train" else (f"{split}_file",)
    files = [f"`{data[k]}`" for k in keys if data.get(k)]
    described = ", ".join(files) if files else f"the {split} split of `{data.get('source')}`"
    limit = data.get(f"max_{split}_samples")
    return described + (f", a seeded random {limit}" if limit else "")
