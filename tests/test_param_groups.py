"""Parameter groups: no weight decay on biases and LayerNorm weights, the head's learning rate, layer-wise
decay, and schedulers that follow the groups."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from imdb_cli.errors import UserError
from imdb_cli.model import SentimentClassifier
from imdb_cli.param_groups import apply_lr_scales, parameter_groups
from imdb_cli.schedules import build_scheduler
from tests.commands import fit, imdb


@pytest.fixture
def model(tiny_encoder):
    model = SentimentClassifier(encoder=str(tiny_encoder))
    model.build()
    return model


def groups_by_name(model, **settings) -> dict[str, dict]:
    return {group["name"]: group for group in parameter_groups(model.encoder, model.head, **settings)}


def test_every_trainable_weight_in_one_group_biases_and_norms_without_decay(model):
    groups = groups_by_name(model)
    assert set(groups) == {"encoder", "encoder.no_decay", "head", "head.no_decay"}
    grouped = [id(p) for group in groups.values() for p in group["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # each once; the frozen pooler left out
    names = {id(p): n for n, p in model.named_parameters()}
    exempt = {names[id(p)] for p in groups["encoder.no_decay"]["params"] + groups["head.no_decay"]["params"]}
    assert exempt and all(n.endswith(".bias") or "LayerNorm" in n for n in exempt)
    decayed = {names[id(p)] for p in groups["encoder"]["params"]}
    assert "encoder.embeddings.word_embeddings.weight" in decayed
    assert not any(n.endswith(".bias") or "LayerNorm" in n for n in decayed)
    assert groups["encoder.no_decay"]["weight_decay"] == 0.0 and "weight_decay" not in groups["encoder"]


def test_layer_decay_and_head_scale(model):
    groups = groups_by_name(model, head_lr_scale=10.0, layer_lr_decay=0.5)  # 2 layers
    scales = {name: group["lr_scale"] for name, group in groups.items() if not name.endswith("no_decay")}
    assert scales == {"encoder.embeddings": 0.25, "encoder.layer_0": 0.5, "encoder.layer_1": 1.0, "head": 10.0}
    optimizer = torch.optim.AdamW(list(groups.values()), lr=1e-3, weight_decay=0.01)
    apply_lr_scales(optimizer)
    by_name = {group["name"]: group for group in optimizer.param_groups}
    assert by_name["encoder.layer_0.no_decay"]["lr"] == pytest.approx(5e-4)
    assert by_name["encoder.layer_0.no_decay"]["weight_decay"] == 0.0
    assert by_name["encoder.layer_0"]["weight_decay"] == 0.01
    assert by_name["head"]["lr"] == pytest.approx(1e-2)


def test_onecycle_peaks_at_each_groups_scaled_rate(model):
    groups = parameter_groups(model.encoder, model.head, head_lr_scale=4.0, layer_lr_decay=0.5)
    optimizer = torch.optim.Adam(groups, lr=1.0)
    apply_lr_scales(optimizer)
    onecycle = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3, total_steps=None, epochs=None)
    scheduler = build_scheduler(onecycle, optimizer, 10)["scheduler"]
    peaks = {group["name"]: group["max_lr"] for group in optimizer.param_groups}
    assert peaks["head"] == pytest.approx(4e-3) and peaks["encoder.layer_1"] == pytest.approx(1e-3)
    assert peaks["encoder.embeddings"] == pytest.approx(2.5e-4)
    assert scheduler.total_steps == 10


def test_without_groups_settings_onecycle_keeps_one_max_lr(model):
    optimizer = torch.optim.Adam(parameter_groups(model.encoder, model.head), lr=1.0)
    apply_lr_scales(optimizer)
    onecycle = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3, total_steps=None, epochs=None)
    build_scheduler(onecycle, optimizer, 10)
    assert {group["max_lr"] for group in optimizer.param_groups} == {1e-3}


def test_rms_norm_weights_are_exempt_too():
    encoder = nn.Module()
    encoder.norm = nn.RMSNorm(4)
    encoder.proj = nn.Linear(4, 4)
    groups = {g["name"]: g for g in parameter_groups(encoder, nn.Linear(4, 2))}
    assert [p.shape for p in groups["encoder.no_decay"]["params"]] == [torch.Size([4]), torch.Size([4])]


def test_layer_decay_needs_layers_it_can_tell_apart():
    class Config:
        num_hidden_layers = 2

    encoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    encoder.config = Config()
    with pytest.raises(UserError, match="cannot be told apart"):
        parameter_groups(encoder, nn.Linear(4, 2), layer_lr_decay=0.9)


def test_layer_decay_needs_a_layer_count():
    with pytest.raises(UserError, match="num_hidden_layers"):
        parameter_groups(nn.Linear(4, 4), nn.Linear(4, 2), layer_lr_decay=0.9)


def test_fit_from_the_command_line_logs_each_groups_rate(tmp_path, tiny_encoder, imdb_archive):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(
        tmp_path, tiny_encoder, imdb_archive, "--model.optimizer", "AdamW",
        "--model.optimizer.init_args.weight_decay", 0.01, "--model.layer_lr_decay", 0.5,
        "--model.head_lr_scale", 10, "--trainer.log_every_n_steps", 1,
    )  # fmt: skip
    events = EventAccumulator(str(tmp_path / "runs/lightning_logs/run")).Reload()
    peak = {tag: max(e.value for e in events.Scalars(tag)) for tag in events.Tags()["scalars"] if tag.startswith("lr-")}
    top = peak["lr-AdamW/encoder.layer_1"]
    assert peak["lr-AdamW/head"] == pytest.approx(10 * top)
    assert peak["lr-AdamW/encoder.layer_0.no_decay"] == pytest.approx(top / 2)
    assert peak["lr-AdamW/encoder.embeddings"] == pytest.approx(top / 4)
    ckpt = "runs/lightning_logs/run/checkpoints/best.ckpt"  # settings given on the command line read back
    assert "test_acc" in imdb("test", "--ckpt_path", ckpt, "--data.max_test_samples", 8, cwd=tmp_path).stdout

    last = "runs/lightning_logs/run/checkpoints/last.ckpt"  # resumed with other groups: one line
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--ckpt_path", last, "--model.layer_lr_decay", 1, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"imdb: error: {last} holds optimizer state for 8 parameter groups (encoder.embeddings, "
        "encoder.embeddings.no_decay, encoder.layer_0, encoder.layer_0.no_decay, ...), but this run has 4"
    )


def test_the_pooler_an_auto_head_reads_trains_with_the_head(tiny_encoder):
    from imdb_cli.model import SentimentClassifier

    model = SentimentClassifier(encoder=str(tiny_encoder), head="auto", head_lr_scale=10, layer_lr_decay=0.5)
    model.build(pretrained=True)
    groups = {group["name"]: group for group in model.parameter_groups()}
    pooler = {id(p) for p in model.classifier.bert.pooler.parameters()}
    assert pooler <= {id(p) for name in ("head", "head.no_decay") for p in groups[name]["params"]}
    assert not any(id(p) in pooler for name, g in groups.items() if name.startswith("encoder") for p in g["params"])
    assert groups["head"]["lr_scale"] == 10 and "encoder.top" not in groups
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.classifier.parameters()))
