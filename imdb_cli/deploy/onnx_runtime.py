"""Running a classifier exported as ONNX (``imdb export --format onnx``) with ONNX Runtime.

The graph is the whole classifier, encoder and head: token ids in, logits and [CLS] vectors out.
``imdb predict``, ``test`` and ``serve`` use it through :class:`OnnxClassifier` wherever they would
run the PyTorch encoder and head, so that records, order and batching stay the same.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from imdb_cli.errors import UserError

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("logits", "cls_vector")
EXTRA = "pip install onnx onnxruntime (imdb-cli's onnx extra)"
SLOW_FUSIONS = ["SkipLayerNormFusion", "BiasGeluFusion"]
"""ONNX Runtime's load-time fusions that a session here leaves out, as the export does: in ONNX
Runtime 1.32's profile of the int8 MiniLM on 300 IMDB reviews, one core of an AMD EPYC, the residual
Add and LayerNormalization fused into SkipLayerNormalization took 1.9 s, unfused 0.4 s; the bias
Add and GELU fused into BiasGelu 0.95 s, a GELU after a MatMul that adds the bias itself 0.5 s."""


def is_onnx_export(path: str | Path) -> bool:
    """Whether ``path`` is a directory that holds an exported ONNX graph."""
    return (Path(path).expanduser() / ONNX_FILE).is_file()


def onnx_fit_message(path: str) -> str:
    return (
        f"{path} is an ONNX export, for predict, test and serve only: fine-tune from its checkpoint, "
        "or from an export with the default --format safetensors"
    )


def require_onnxruntime():
    """The ``onnxruntime`` module, or a one-line error that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"ONNX models need ONNX Runtime: {EXTRA}") from None
    return onnxruntime


class OnnxClassifier:
    """An exported ONNX classifier in ONNX Runtime CPU sessions.

    Called like the PyTorch model's encoder and head together, with the tensors a batch holds;
    returns ``(logits, cls)`` as float32 tensors on the CPU. ``config`` is the encoder's
    ``config.json``, kept beside the graph, for the width of its [CLS] vectors and its length limit.

    Each text runs alone, at its own length: the graph holds no padding mask (the export fuses
    attention without one, so that ONNX Runtime takes its flash-attention kernel), no compute goes to
    padding, and int8 activations are scaled to each text, not to whatever a batch holds, so a text's
    prediction does not depend on its batch. The texts of a batch run one per core, each in a single
    thread, which was faster on two cores than one text at a time on both (CHANGELOG,
    2026-12-02); a lone text, as a server mostly sees, runs on all ``threads``.

    Args:
        path: the exported directory.
        threads: the cores to use; by default PyTorch's count (one per physical core).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        from imdb_cli.encoders import load_config

        self.file = Path(path).expanduser() / ONNX_FILE
        self.threads = threads or torch.get_num_threads()
        self.session = self._session(threads=1)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.config = load_config(str(path))
        self._alone = self.session if self.threads == 1 else None
        self._pool: ThreadPoolExecutor | None = None

    def _session(self, threads: int):
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            return ort.InferenceSession(
                str(self.file), options, providers=["CPUExecutionProvider"], disabled_optimizers=SLOW_FUSIONS
            )
        except Exception as err:  # ONNX Runtime raises its own exception types, one per failure
            raise UserError(f"cannot load {self.file}: {str(err).splitlines()[0]}") from None

    @property
    def width(self) -> int:
        return self.config.hidden_size

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["token_type_ids"] is None:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        keep = attention_mask.detach().cpu().bool()
        columns = {name: given[name].detach().cpu() for name in self.inputs}

        def run(session, row: int) -> list:
            feeds = {name: column[row, keep[row]].unsqueeze(0).numpy() for name, column in columns.items()}
            return session.run(list(OUTPUTS), feeds)

        if len(input_ids) == 1:
            if self._alone is None:
                self._alone = self._session(threads=self.threads)
            outputs = [run(self._alone, 0)]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx")
            outputs = list(self._pool.map(lambda row: run(self.session, row), range(len(input_ids))))
        logits, cls = (torch.from_numpy(np.concatenate(parts)) for parts in zip(*outputs, strict=True))
        device = input_ids.device
        return logits.to(device), cls.to(device)
