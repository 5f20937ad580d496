"""Attention that trains faster on a CPU: PyTorch's flash attention forward in bf16, its backward in
fp32, where gradients flow under CPU bf16 autocast.

Under CPU autocast the attention kernel runs in bf16, and its backward pass in bf16 is the slow one:
on a 2-core Xeon with AMX, one layer of MiniLM (16 texts of 320 tokens, 12 heads of 32) took 8.7 ms
forward and 58 ms backward in bf16, 16 ms and 40 ms in fp32. So the forward pass keeps the bf16
kernel and the backward pass runs the fp32 kernel on the same (bf16-valued) inputs, with the
forward's log-sum-exp. ``bench/train_step.py`` (docs/benchmarks/train-speed.md) times a whole step
against bf16 both ways, in one run: 1.09x as fast, 1.15x beside imdb-cli's dropout; against fp32 both
ways, what it replaced, an exploration run measured 8% (CHANGELOG). Without gradients (validation,
test, predict) and on every GPU, attention runs as transformers' ``sdpa``; so does attention with
dropout on its probabilities.
Registered with transformers' ``AttentionInterface``: the encoder keeps its own modules, weights and
checkpoints, and its export loads with plain ``sdpa``.
"""

from __future__ import annotations

import torch

NAME = "imdb_sdpa"
_aten = torch.ops.aten


class _Attention(torch.autograd.Function):
    """``softmax(q kᵀ · scale + mask) v`` for ``(batch, heads, tokens, head width)`` bf16 tensors:
    the bf16 flash kernel forward, the fp32 one backward."""

    @staticmethod
    def forward(ctx, query, key, value, mask, low_mask, scale):
        out, logsumexp = _aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, 0.0, False, attn_mask=low_mask, scale=scale
        )
        ctx.save_for_backward(query, key, value, out, logsumexp, mask)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):
        query, key, value, out, logsumexp, mask = ctx.saved_tensors
        grads = _aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad.float(), query.float(), key.float(), value.float(), out.float(), logsumexp,
            0.0, False, attn_mask=mask, scale=ctx.scale,
        )  # fmt: skip
        return *(g.to(query.dtype) for g in grads), None, None, None


_last: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] | None = None
"""The mask of the last call and its :func:`_additive` forms: every layer of a forward pass gets the same one."""


def _additive(mask: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A boolean mask (True: attend), or a float one, as fp32 and bf16 masks to add to the scores."""
    global _last
    if mask is None:
        return None, None
    if _last is None or _last[0] is not mask:
        if mask.is_floating_point():
            additive = mask.float()
        else:
            additive = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
            additive.masked_fill_(~mask, float("-inf"))
        _last = (mask, (additive, additive.to(torch.bfloat16)))
    return _last[1]


def sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' ``sdpa_attention_forward``, with a bf16 forward and fp32 backward where an
    encoder's attention trains under CPU bf16 autocast."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cpu_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    plain = kwargs.get("position_bias") is not None or getattr(module, "num_key_value_groups", 1) > 1
    if dropout or plain or not (cpu_bf16 and torch.is_grad_enabled() and query.device.type == "cpu"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    with torch.autocast("cpu", enabled=False):
        bf16 = [t.to(torch.bfloat16) for t in (query, key, value)]
        out = _Attention.apply(*bf16, *_additive(attention_mask), scaling)
    return out.transpose(1, 2).contiguous(), None


def use_fast_attention(encoder) -> bool:
    """Switch an encoder that uses ``sdpa`` to :func:`sdpa`; whether it was switched."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if getattr(encoder.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, sdpa)
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])  # else padding goes unmasked
    encoder.set_attn_implementation(NAME)
    return True
