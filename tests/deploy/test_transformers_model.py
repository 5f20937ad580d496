"""A trained model as one transformers sequence classifier (:mod:`imdb_cli.deploy.transformers_model`), in
process: each head on each architecture becomes the class that loads it whole, with the same logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from imdb_cli.deploy.transformers_model import save, transformers_model
from imdb_cli.model import SentimentClassifier

LABELS = ["bad", "fine", "good"]


def built(encoder, **settings) -> SentimentClassifier:
    model = SentimentClassifier(encoder=str(encoder), label_names=LABELS, **settings)
    model.build(pretrained=True)
    return model.eval()


@pytest.mark.parametrize(
    ("encoder", "settings", "architecture"),
    [
        ("tiny_distilbert", {"head": "mlp"}, "DistilBertForSequenceClassification"),
        ("tiny_distilbert", {"head": "mlp", "head_hidden": 16}, "MLPHeadForSequenceClassification"),
        ("tiny_encoder", {"head": "mlp"}, "MLPHeadForSequenceClassification"),
        ("tiny_encoder", {"head": "mlp", "pooling": "mean"}, "MLPHeadForSequenceClassification"),
        ("tiny_distilbert", {"head": "mlp", "pooling": "mean"}, "MLPHeadForSequenceClassification"),
        ("tiny_encoder", {"head": "mlp", "pooling": "mean", "head_hidden": 0}, "MLPHeadForSequenceClassification"),
        ("tiny_encoder", {"head": "auto"}, "BertForSequenceClassification"),
        ("tiny_distilbert", {"head": "auto"}, "DistilBertForSequenceClassification"),
    ],
)
def test_every_head_saves_as_a_classifier_transformers_loads_whole(request, tmp_path, encoder, settings, architecture):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = request.getfixturevalue(encoder)
    model = built(path, **settings)
    save(transformers_model(model), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [architecture]
    assert config["id2label"] == {"0": "bad", "1": "fine", "2": "good"}
    assert config["problem_type"] == "single_label_classification"
    remote = architecture == "MLPHeadForSequenceClassification"
    assert (tmp_path / "modeling_imdb_cli.py").is_file() == remote
    loaded, info = AutoModelForSequenceClassification.from_pretrained(
        tmp_path, output_loading_info=True, trust_remote_code=remote
    )
    assert type(loaded).__name__ == architecture
    assert not any(info.values()), info  # no weight newly initialised, unused or of another shape
    tokens = AutoTokenizer.from_pretrained(path)(
        ["great moving film", "dull plot and dull scene scene"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        ours = model(tokens["input_ids"], tokens["attention_mask"], tokens.get("token_type_ids"))
        theirs = loaded.eval()(**tokens).logits
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def test_the_remote_code_class_needs_nothing_from_imdb_cli():
    from imdb_cli.deploy import modeling_imdb_cli

    source = Path(modeling_imdb_cli.__file__).read_text()
    assert "imdb_cli" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
