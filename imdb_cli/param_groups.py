"""How the classifier's weights are grouped for the optimizer: no weight decay on biases and
normalization weights, a learning rate for the head apart from the encoder's, and layer-wise
learning-rate decay (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?")."""

from __future__ import annotations

import re

import torch
from jsonargparse.typing import restricted_number_type
from torch import nn

from imdb_cli.checkpoints import new_run_hint
from imdb_cli.errors import UserError

LayerDecay = restricted_number_type("LayerDecay", float, [(">", 0), ("<=", 1)], join="and")
"""A per-layer learning-rate factor in (0, 1]."""

_LAYER = re.compile(r"(?:^|\.)(?:layer|layers)\.(\d+)\.")
"""The transformer layer a parameter name belongs to: ``encoder.layer.3.`` (BERT, MiniLM),
``transformer.layer.3.`` (DistilBERT)."""


def _exempt_from_decay(module: nn.Module, name: str) -> bool:
    """Biases and the weights of normalization layers (LayerNorm, RMSNorm): decaying them toward 0
    only shifts or shrinks activations. Told by module type, not by shape, so that FSDP's flattened
    shards are grouped as their originals."""
    return name == "bias" or "norm" in type(module).__name__.lower()


def _named_trainable(module: nn.Module):
    for module_name, child in module.named_modules():
        for name, parameter in child.named_parameters(recurse=False):
            if parameter.requires_grad:
                yield f"{module_name}.{name}" if module_name else name, parameter, _exempt_from_decay(child, name)


def _num_layers(encoder: nn.Module) -> int:
    config = getattr(encoder, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    if not layers:
        name = type(encoder).__name__
        raise UserError(f"--model.layer_lr_decay needs an encoder whose config gives num_hidden_layers, not {name}")
    return int(layers)


def _encoder_depth(name: str, num_layers: int) -> tuple[str, int]:
    """A group label and how many layers below the top this parameter sits: the last transformer
    layer is 0, the embeddings are ``num_layers``; anything else (a final norm) counts as the top."""
    match = _LAYER.search(name)
    if match:
        index = int(match.group(1))
        return f"encoder.layer_{index}", max(0, num_layers - 1 - index)
    if "embeddings" in name:
        return "encoder.embeddings", num_layers
    return "encoder.top", 0


def parameter_groups(
    encoder: nn.Module, head: nn.Module, head_lr_scale: float = 1.0, layer_lr_decay: float = 1.0
) -> list[dict]:
    """Optimizer parameter groups, each with a unique ``name`` (LearningRateMonitor logs
    ``lr-Adam/NAME``) and an ``lr_scale``: the share of the configured learning rate it trains at.

    Groups exempt from weight decay carry ``weight_decay: 0``; the others take the optimizer's
    (``--model.optimizer.init_args.weight_decay``). An encoder layer ``d`` layers below the top trains at
    ``layer_lr_decay ** d`` of the rate, the embeddings at ``layer_lr_decay ** num_layers``, the head at
    ``head_lr_scale``. Frozen weights (a pooler the head does not read) are left out; one the head
    reads (``--model.head auto`` on BERT) is the head's.
    """
    num_layers = _num_layers(encoder) if layer_lr_decay != 1 else 0
    groups: dict[str, dict] = {}

    def add(label: str, scale: float, name_and_parameters) -> None:
        for _, parameter, exempt in name_and_parameters:
            key = f"{label}.no_decay" if exempt else label
            group = groups.setdefault(key, {"name": key, "params": [], "lr_scale": scale})
            if exempt:
                group["weight_decay"] = 0.0
            group["params"].append(parameter)

    in_head = {id(parameter) for parameter in head.parameters()}  # an encoder's pooler, when the head reads it
    for name, parameter, exempt in _named_trainable(encoder):
        if id(parameter) in in_head:
            continue
        label, depth = _encoder_depth(name, num_layers) if num_layers else ("encoder", 0)
        add(label, layer_lr_decay**depth, [(name, parameter, exempt)])
    if num_layers and not any(name.startswith("encoder.layer_") for name in groups):
        raise UserError(
            f"--model.layer_lr_decay: no layer of {type(encoder).__name__} is named layer.N or layers.N, "
            "so its layers cannot be told apart: leave it at 1"
        )
    add("head", head_lr_scale, _named_trainable(head))
    return list(groups.values())


def apply_lr_scales(optimizer: torch.optim.Optimizer) -> None:
    """Set each group's learning rate to its ``lr_scale`` of the optimizer's configured one."""
    for group in optimizer.param_groups:
        group["lr"] = optimizer.defaults["lr"] * group.get("lr_scale", 1.0)


def scaled_per_group(value, optimizer: torch.optim.Optimizer):
    """A scheduler's absolute learning rate (OneCycleLR's ``max_lr``) as one value per group, scaled
    as the groups are; a scalar when every group trains at the same rate."""
    scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    if isinstance(value, (list, tuple)) or all(scale == 1.0 for scale in scales):
        return value
    return [value * scale for scale in scales]


def check_resumed_groups(optimizer_state: dict, groups: list[dict], ckpt_path: str) -> None:
    """A resumed optimizer must have this run's groups: another ``layer_lr_decay`` or a checkpoint of
    an older imdb-cli (one group) would fail deep in PyTorch, or pair Adam's moments with other weights."""
    saved = [group.get("name") for group in optimizer_state.get("param_groups", [])]
    wanted = [group["name"] for group in groups]
    if saved != wanted:
        shown = ", ".join(map(str, saved[:4])) + (", ..." if len(saved) > 4 else "")
        raise UserError(
            f"{ckpt_path} holds optimizer state for {len(saved)} parameter groups ({shown}), but this run has "
            f"{len(wanted)} (--model.layer_lr_decay and --model.head_lr_scale decide them): {new_run_hint(ckpt_path)}"
        )
