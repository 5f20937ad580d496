"""Running a classifier exported as ONNX (``imdb export --format onnx``) with ONNX Runtime.

The graph is the whole classifier, encoder and head: token ids in, logits and [CLS] vectors out.
``imdb predict``, ``test`` and ``serve`` use it through :class:`OnnxClassifier` wherever they would
run the PyTorch encoder and head, so that records, order and batching stay the same.
"""

from __future__ import annotations

from pathlib import Path

import torch

from imdb_cli.errors import UserError

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("logits", "cls_vector")
EXTRA = "pip install 'imdb-cli[onnx]'"


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
    """An exported ONNX classifier in an ONNX Runtime CPU session.

    Called like the PyTorch model's encoder and head together, with the tensors a batch holds;
    returns ``(logits, cls)`` as float32 tensors on the CPU. ``config`` is the encoder's
    ``config.json``, kept beside the graph, for the width of its [CLS] vectors and its length limit.

    Args:
        path: the exported directory.
        threads: ONNX Runtime's intra-op threads; by default one per physical core.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = require_onnxruntime()
        from imdb_cli.encoders import load_config

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        file = Path(path).expanduser() / ONNX_FILE
        try:
            self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ONNX Runtime raises its own exception types, one per failure
            raise UserError(f"cannot load {file}: {str(err).splitlines()[0]}") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.config = load_config(str(path))

    @property
    def width(self) -> int:
        return self.config.hidden_size

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["token_type_ids"] is None:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feeds = {name: given[name].detach().cpu().numpy() for name in self.inputs}
        logits, cls = self.session.run(list(OUTPUTS), feeds)
        device = input_ids.device
        return torch.from_numpy(logits).to(device), torch.from_numpy(cls).to(device)
