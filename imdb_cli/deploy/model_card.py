"""The model card of an export: ``README.md`` built with ``huggingface_hub``'s ``ModelCard``, so that the
Hub shows its task, base model, data and test results (``model-index``) and ``ModelCard.load`` reads it back."""

from __future__ import annotations

from imdb_cli.encoders import hub_id

ACLIMDB = "stanfordnlp/imdb"
"""The Hub dataset of aclImdb, which ``--data.source`` reads by default."""

METRIC_TYPES = {
    "acc": "accuracy", "f1": "f1", "f1_micro": "f1", "f1_macro": "f1", "auroc": "roc_auc", "mse": "mse",
    "mae": "mae", "pearson": "pearsonr", "spearman": "spearmanr", "exact_match": "exact_match",
}  # fmt: skip
"""``imdb test``'s metric names (without ``test_``) as the Hub's metric types."""


def model_card(meta: dict, config, data: dict, test: dict | None, name: str, special_tokens: int = 2):
    """The export's ``ModelCard``: what the model is, how it scored, how to use it.

    ``config`` is the export's transformers config (labels, problem type, remote code);
    ``special_tokens`` is how many the tokenizer adds to a text ([CLS] and [SEP] for BERT).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    onnx = meta.get("model_format") == "onnx"
    on_aclimdb = not (data.get("train_file") or data.get("test_file"))
    results = []
    if test is not None:
        dataset = ACLIMDB if on_aclimdb else (data.get("test_file") or "test data")
        for metric, value in test["metrics"].items():
            if metric.endswith("_loss"):
                continue  # the training loss's value on test data: no metric the Hub knows
            short = metric.removeprefix("test_")
            results.append(
                EvalResult(
                    task_type="text-classification", dataset_type=dataset, dataset_name=dataset,
                    dataset_split="test", metric_type=METRIC_TYPES.get(short, short), metric_value=round(value, 4),
                    metric_name=metric,
                )
            )  # fmt: skip
    card_data = ModelCardData(
        model_name=name,
        library_name="onnx" if onnx else "transformers",
        pipeline_tag="text-classification",
        base_model=hub_id(meta["base_encoder"]),
        datasets=[ACLIMDB] if on_aclimdb else None,
        tags=["imdb-cli", "text-classification", *(["custom_code"] if getattr(config, "auto_map", None) else [])],
        eval_results=results or None,
    )
    body = _body(meta, config, data, test, name, special_tokens)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _body(meta: dict, config, data: dict, test: dict | None, name: str, special_tokens: int) -> str:
    from imdb_cli.deploy.export import ONNX_USE, PLAIN_USE

    base = meta["base_encoder"]
    onnx = meta.get("model_format") == "onnx"
    kind = {"multi_label": "multi-label text classification", "regression": "text regression"}
    what = kind.get(meta.get("task"), "text classification")
    labels = [config.id2label[i] for i in range(config.num_labels)]
    lines = [f"# {name}", "", f"`{base}` fine-tuned for {what} by imdb-cli {meta['imdb_cli_version']}."]
    if onnx:
        quantized = " with int8 weights (dynamic quantization)" if meta["onnx"]["quantize"] == "int8" else ""
        lines[-1] += f" Exported as one ONNX graph, encoder and head, for ONNX Runtime{quantized}."
    outputs = "Predicts" if meta.get("task") == "regression" else "Labels"
    lines += [f"{outputs}: {', '.join(labels)}. Reads at most {meta['max_length']} tokens of a text"]
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
    lines += [f"- data: {_describe(data, 'train')}, batch size {data['batch_size']}"]
    lines += ["", "## Use", "", "```bash", f"imdb predict --model_dir {name} --data.predict_file reviews.txt"]
    lines += ["```", ""]
    if onnx:
        lines += ["With ONNX Runtime alone:", "", "```python", ONNX_USE.replace('"exported"', f'"{name}"'), "```", ""]
        return "\n".join(lines)
    snippet = PLAIN_USE.replace('"exported"', f'"{name}"')
    if getattr(config, "auto_map", None):
        lines += ["The head is imdb-cli's MLP, defined in `modeling_imdb_cli.py` here: transformers loads it with "]
        lines[-1] += "`trust_remote_code=True` (read that file first: it is the code that will run)."
        lines += [""]
    lines += ["With transformers alone:", "", "```python", snippet, "```", ""]
    if meta.get("task") == "multi_label":
        lines += [f"A label is predicted from its probability's threshold: {meta['thresholds']} in `classifier.json`."]
        lines += [""]
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
