"""DDP on this machine: two CPU processes (gloo) fit, test and predict on a tiny encoder.

Each run is checked against what one process gives on the same data: the optimizer steps halve,
metrics are synced over both ranks, and predictions come back as one file in input order.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.commands import CONFIGS, imdb
from tests.conftest import write_aclimdb

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


@pytest.fixture(scope="module")
def ddp_fit(tmp_path_factory, tiny_encoder):
    """The issue's command on 128 training reviews, with the tiny encoder in place of MiniLM."""
    workdir = tmp_path_factory.mktemp("ddp")
    data = write_aclimdb(workdir / "data", per_class=100)
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--data.batch_size", 16, *DDP,
        "--model.encoder", tiny_encoder, "--data.source", data, "--data.max_train_samples", 128,
        "--data.max_length", 64, "--data.cache_dir", "cache", "--trainer.default_root_dir", "runs",
        cwd=workdir,
    )  # fmt: skip
    return workdir, data, fit


def test_ddp_fit_shares_each_step_between_two_processes(ddp_fit):
    workdir, _, _ = ddp_fit
    last = torch.load(workdir / "runs/lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 4  # 128 reviews / (16 per process x 2 processes), not 128 / 16 = 8


def test_ddp_fit_tokenizes_once_not_once_per_rank(ddp_fit):
    _, _, fit = ddp_fit
    tokenized = [line for line in fit.stderr.splitlines() if line.startswith("imdb: tokenized")]
    assert tokenized == ["imdb: tokenized 128 train texts", "imdb: tokenized 43 val texts"]  # a quarter beside 128


def test_ddp_test_metrics_cover_both_ranks(ddp_fit):
    workdir, data, _ = ddp_fit
    ckpt = "runs/lightning_logs/version_0/checkpoints/last.ckpt"
    results = {}
    for name, extra in (("one", []), ("two", DDP)):
        test = imdb("test", "--ckpt_path", ckpt, "--data.source", data, "--data.max_test_samples", 61, *extra,
                    "--trainer.precision", "32-true", "--trainer.logger", "false", "--report_dir", name,
                    cwd=workdir)  # fmt: skip
        results[name] = test.stdout
    # A rank that reported only its own half would show different accuracy and loss.
    assert _metric(results["one"], "test_acc") == pytest.approx(_metric(results["two"], "test_acc"), abs=1e-6)
    assert _metric(results["one"], "test_loss") == pytest.approx(_metric(results["two"], "test_loss"), abs=1e-5)
    one, two = (json.loads((workdir / name / "test_metrics.json").read_text()) for name in ("one", "two"))
    assert one["samples"] == two["samples"] == 61
    assert one["confusion_matrix"] == two["confusion_matrix"]
    assert (workdir / "two" / "roc_curve.png").is_file()


def _metric(stdout: str, name: str) -> float:
    line = next(line for line in stdout.splitlines() if f" {name} " in line)
    return float(line.split()[-2])


def test_ddp_predict_writes_one_file_in_input_order(ddp_fit):
    workdir, _, _ = ddp_fit
    ckpt = "runs/lightning_logs/version_0/checkpoints/last.ckpt"
    texts = [f"{'great wonderful ' * (i % 7)}film {i}" if i % 3 else "" for i in range(41)]
    (workdir / "reviews.txt").write_text("\n".join(texts) + "\n")
    for name, extra in (("one.jsonl", []), ("two.jsonl", DDP)):
        imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "reviews.txt", "--output", name, *extra,
             "--trainer.precision", "32-true", cwd=workdir)  # fmt: skip
    one, two = (workdir / "one.jsonl").read_text(), (workdir / "two.jsonl").read_text()
    assert [json.loads(r)["line"] for r in two.splitlines()] == [i + 1 for i, t in enumerate(texts) if t]
    # Other batch mates pad differently, so probabilities agree to float rounding, not bit for bit.
    for a, b in zip(map(json.loads, one.splitlines()), map(json.loads, two.splitlines()), strict=True):
        assert (a["line"], a["label"]) == (b["line"], b["label"])
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)
    assert not list(Path(workdir).glob(".imdb-predict-*")), "part files left behind"


def test_ddp_predict_refuses_stdin(ddp_fit):
    workdir, _, _ = ddp_fit
    ckpt = "runs/lightning_logs/version_0/checkpoints/last.ckpt"
    result = imdb(
        "predict", "--ckpt_path", ckpt, "--data.predict_file", "-", *DDP, cwd=workdir, stdin="x\n", check=False
    )
    assert result.returncode == 1
    assert "imdb: error: --data.predict_file - (stdin) needs one process, not 2" in result.stderr


def test_fsdp_config_shards_the_classifier_layer_by_layer(tiny_encoder, tmp_path):
    """Lightning runs FSDP on CUDA only; here torch's FSDP wraps the model on CPU with the
    strategy that configs/trainer/fsdp.yaml builds, and takes a training step."""
    import yaml
    from jsonargparse import ArgumentParser
    from pytorch_lightning.strategies import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel
    from transformers.models.bert.modeling_bert import BertLayer

    from imdb_cli.model import SentimentClassifier

    settings = yaml.safe_load((CONFIGS / "trainer" / "fsdp.yaml").read_text())["strategy"]
    parser = ArgumentParser()
    parser.add_argument("--strategy", type=FSDPStrategy)
    strategy = parser.instantiate_classes(parser.parse_object({"strategy": settings})).strategy
    model = SentimentClassifier(encoder=str(tiny_encoder))
    model.configure_model()
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        sharded = FullyShardedDataParallel(
            model, device_id=torch.device("cpu"), sharding_strategy=strategy.sharding_strategy, **strategy.kwargs
        )
        units = [m.module for m in sharded.modules() if isinstance(m, FullyShardedDataParallel)]
        assert sum(isinstance(unit, BertLayer) for unit in units) == model.encoder.config.num_hidden_layers
        optimizer = torch.optim.Adam(sharded.parameters())
        ids = torch.randint(5, 40, (4, 12))
        (100 * sharded(ids, torch.ones_like(ids))).sum().backward()  # frozen pooler beside trained weights

        # gradient_clip_val 1.0 of the shared config, which Lightning's own clipping refuses under FSDP
        def grad_norm() -> float:
            grads = [p.grad for p in sharded.parameters() if p.grad is not None]
            return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))

        model._trainer = SimpleNamespace(strategy=FSDPStrategy.__new__(FSDPStrategy))
        model._trainer.strategy.model = sharded
        assert grad_norm() > 1.0
        model.configure_gradient_clipping(optimizer, 1.0, "norm")
        assert grad_norm() <= 1.0 + 1e-5
        optimizer.step()
    finally:
        torch.distributed.destroy_process_group()
