"""The whole classifier as an ONNX graph, optimized for ONNX Runtime and optionally int8-quantized.

Three steps, each a library's own:
1. PyTorch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``) traces encoder and
   head, with the encoder's attention in its plain ("eager") form, and dynamic batch and length axes.
   Its graph of attention is the pattern ONNX Runtime's transformer optimizer knows; the graph of
   the newer dynamo exporter is not fused by it, and ran slower than PyTorch on a 2-core CPU
   (docs: guides/export.md).
2. ``onnxruntime.transformers.optimizer`` fuses attention (as ``MultiHeadAttention``), embeddings
   and GELU into ONNX Runtime's CPU kernels; not a residual Add into LayerNorm nor a bias into GELU,
   whose fused CPU kernels were the slower (:data:`~imdb_cli.deploy.onnx_runtime.SLOW_FUSIONS`).
   Attention is fused without a padding mask (``FusionOptions.disable_attention_mask``):
   :class:`~imdb_cli.deploy.onnx_runtime.OnnxClassifier` runs each text alone, unpadded, and without a mask
   ONNX Runtime takes its flash-attention kernel. The graph then takes no ``attention_mask``; where
   a fusion does not apply, the mask stays an input.
3. ``--quantize int8``: ``onnxruntime.quantization.quantize_dynamic``, int8 weights of every MatMul
   (one scale per output channel), activations quantized on the fly, text by text.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from imdb_cli.deploy.onnx_runtime import INPUTS, ONNX_FILE, OUTPUTS, require_onnxruntime

OPSET = 17


class _Classifier(nn.Module):
    """A transformers sequence classifier as the graph's function: token ids in, ``(logits, cls)`` out:
    ``cls`` is the vector the head reads."""

    def __init__(self, classifier: nn.Module, segments: bool) -> None:
        super().__init__()
        self.classifier, self.segments = classifier, segments

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if self.segments else {}
        out = self.classifier(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **extra)
        pooled = getattr(self.classifier, "pooled", None)  # imdb-cli's own class: [CLS] or the mean
        last = out.hidden_states[-1]
        return out.logits, pooled(last, attention_mask) if pooled else last[:, 0]


def write_onnx(classifier: nn.Module, directory: Path, quantize: str | None = None, pairs: bool = False) -> dict:
    """Write ``classifier`` (the export's transformers model, :mod:`imdb_cli.deploy.transformers_model`)
    as ``directory/model.onnx``; what was done, for classifier.json.

    The graph takes ``token_type_ids`` only for a model of text ``pairs`` on an encoder that reads
    them. It is traced on a dummy batch of two texts of 8 tokens, and takes any length, and any
    batch of texts of one length: it has no padding mask once attention is fused.
    """
    from imdb_cli.encoders import takes_segments

    require_onnxruntime()
    classifier.set_attn_implementation("eager")  # the export's own copy
    segments = pairs and takes_segments(classifier)
    names = list(INPUTS if segments else INPUTS[:2])
    dummy = torch.ones(2, 8, dtype=torch.long)
    module = _Classifier(classifier, segments).eval()
    raw = directory / "raw.onnx"
    axes = {name: {0: "batch", 1: "length"} for name in names} | {name: {0: "batch"} for name in OUTPUTS}
    # Tracing fixes Python-level branches to the dummy's case; the one transformers warns of (a mask
    # longer than the input) never arises here, where mask and ids come from one collate.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Exporting aten::index operator", UserWarning)
        torch.onnx.export(
            module, tuple(dummy for _ in names), str(raw), dynamo=False, opset_version=OPSET,
            input_names=names, output_names=list(OUTPUTS), dynamic_axes=axes,
        )  # fmt: skip
    fused, inputs = _optimize(raw, directory / "optimized.onnx", classifier.config)
    raw.unlink()
    final = directory / ONNX_FILE
    if quantize == "int8":
        _quantize_int8(directory / "optimized.onnx", final)
        (directory / "optimized.onnx").unlink()
    else:
        (directory / "optimized.onnx").rename(final)
    return {"opset": OPSET, "inputs": inputs, "quantize": quantize, "fused": fused}


def _quantize_int8(source: Path, destination: Path) -> None:
    """Dynamic int8 quantization of every MatMul, one weight scale per output channel."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: the fused ops (com.microsoft domain) give shape inference no output types.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    logging.disable(logging.WARNING)  # its advice to pre-process: shape inference, which the fused ops defeat
    try:
        quantize_dynamic(source, destination, per_channel=True, weight_type=QuantType.QInt8, extra_options=extra)
    finally:
        logging.disable(logging.NOTSET)


def _optimize(source: Path, destination: Path, config) -> tuple[dict[str, int], list[str]]:
    """ONNX Runtime's fusions for BERT-family encoders; the count of each fused operator, and the
    inputs the graph still takes (quantization keeps them)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.use_multi_head_attention = True
    options.disable_attention_mask()
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False  # see SLOW_FUSIONS
    options.enable_bias_gelu = False
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    optimized = optimize_model(
        str(source), model_type="bert", num_heads=heads, hidden_size=width, optimization_options=options
    )
    optimized.save_model_to_file(str(destination))
    fused = {op: count for op, count in optimized.get_fused_operator_statistics().items() if count}
    return fused, [i.name for i in optimized.model.graph.input]
