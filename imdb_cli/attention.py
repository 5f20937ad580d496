"""Attention that trains faster on a CPU: PyTorch's scaled-dot-product attention, in fp32 where
gradients flow under bf16 autocast.

Under CPU autocast the attention kernel runs in bf16, and its backward pass in bf16 is slower than in
fp32: on a 2-core Xeon with AMX, one layer of MiniLM (16 texts of 320 tokens, 12 heads of 32) took
8.7 ms forward and 58 ms backward in bf16, 16 ms and 40 ms in fp32, and a whole training step 8% less
time with fp32 attention (CHANGELOG, 2026-12-06). Without gradients (validation, test, predict) the
bf16 kernel is the faster, and runs as before; so does every GPU. The matrix products around the
attention stay in bf16. Registered with transformers' ``AttentionInterface``: the encoder keeps its own
modules, weights and checkpoints, and its export loads with plain ``sdpa``.
"""

from __future__ import annotations

import torch

NAME = "imdb_sdpa"


def sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' ``sdpa_attention_forward``, in fp32 when it trains under CPU bf16 autocast."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cpu_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if not (cpu_bf16 and torch.is_grad_enabled() and query.device.type == "cpu"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    with torch.autocast("cpu", enabled=False):
        query, key, value = query.float(), key.float(), value.float()
        out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return out.to(torch.bfloat16), weights


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
