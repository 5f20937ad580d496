"""The test report: metrics JSON, PNG figures that open, and the metrics and figures in TensorBoard."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from imdb_cli.report import TestReport, report_dir
from imdb_cli.tasks import build_task

FIGURES = ("confusion_matrix", "roc_curve", "precision_recall_curve")


def test_report_dir_sits_beside_the_checkpoints_run(tmp_path):
    assert report_dir("runs/lightning_logs/version_3/checkpoints/best.ckpt").as_posix() == (
        "runs/lightning_logs/version_3/test/best"
    )
    assert report_dir("models/final.ckpt").as_posix() == "models/test/final"


@pytest.mark.parametrize("labels", [["negative", "positive"], ["neg", "neutral", "pos"]])
def test_report_counts_every_prediction_and_draws_every_figure(tmp_path, labels):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = SimpleNamespace(
        is_global_zero=True, global_step=7, datamodule=None,
        callback_metrics={"test_acc": torch.tensor(0.75), "val_acc": torch.tensor(0.5)},
    )  # fmt: skip
    module = SimpleNamespace(label_names=labels, device=torch.device("cpu"), task=build_task("classification", labels))
    report = TestReport(tmp_path / "report", "runs/checkpoints/best.ckpt")
    report.setup(trainer, module, "test")
    report.on_test_start(trainer, module)
    generator = torch.Generator().manual_seed(0)
    truth, predicted = [], []
    for _ in range(5):
        target = torch.randint(0, len(labels), (8,), generator=generator)
        probs = (torch.randn(8, len(labels), generator=generator) + 2 * torch.eye(len(labels))[target]).softmax(-1)
        report.on_test_batch_end(trainer, module, {"scores": probs, "labels": target}, None, 0)
        truth += target.tolist()
        predicted += probs.argmax(-1).tolist()
    report.on_test_end(trainer, module)

    saved = json.loads((tmp_path / "report" / "test_metrics.json").read_text())
    assert saved["samples"] == 40 and saved["label_names"] == labels
    assert saved["metrics"] == {"test_acc": 0.75}
    for t in range(len(labels)):
        for p in range(len(labels)):
            expected = sum(1 for a, b in zip(truth, predicted, strict=True) if (a, b) == (t, p))
            assert saved["confusion_matrix"][t][p] == expected
    for c, name in enumerate(labels):
        hits = sum(1 for a, b in zip(truth, predicted, strict=True) if a == b == c)
        figures = saved["per_class"][name]
        assert figures["support"] == truth.count(c)
        assert figures["recall"] == pytest.approx(hits / truth.count(c), abs=1e-6)
        assert figures["precision"] == pytest.approx(hits / max(1, predicted.count(c)), abs=1e-6)
    for name in FIGURES:
        with Image.open(tmp_path / "report" / f"{name}.png") as image:
            assert image.width > 300 and image.height > 300
    events = EventAccumulator(str(tmp_path / "report")).Reload()
    assert sorted(events.Tags()["images"]) == sorted(f"test/{name}" for name in FIGURES)
    assert events.Scalars("test_acc")[0].value == 0.75
    assert events.Images("test/roc_curve")[0].step == 7


def test_the_report_names_the_test_table_not_the_default_source():
    from imdb_cli.report import _data_settings

    hparams = {"source": "https://ai.stanford.edu/aclImdb_v1.tar.gz", "test_file": "test.csv", "max_length": 64}
    table = _data_settings(SimpleNamespace(hparams=hparams, uses_tables=True))
    assert table["test_file"] == "test.csv" and "source" not in table
    archive = _data_settings(SimpleNamespace(hparams={**hparams, "test_file": None}, uses_tables=False))
    assert archive["source"].endswith("aclImdb_v1.tar.gz") and "test_file" not in archive


def test_per_class_figures_show_a_class_never_predicted():
    from imdb_cli.tasks.single_label import per_class

    figures = per_class(torch.tensor([[95, 0], [5, 0]]), ["common", "rare"])
    assert figures["rare"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5}
    assert figures["common"]["recall"] == 1.0 and figures["common"]["precision"] == 0.95
