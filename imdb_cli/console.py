"""What ``imdb`` prints besides its own output: the chatter of its libraries, filtered out.

Lightning advertises litlogger and litmodels on every run, says which seed it set, that no GPU
or TPU is there, that bf16 autocast is on (the CLI chose it), that it restored the checkpoint it
was asked to, and why a fit stopped; it warns that a test run lacks the callbacks of the fit that
made its checkpoint, and says it cannot size a bf16 model summary; PyTorch warns about a
deprecation inside Lightning, torchmetrics about the memory of a metric that keeps its inputs.
None of it concerns a user of ``imdb``, who sees the run's own lines, progress bars, metrics and
mistakes instead (``tests/test_console.py`` lists what a short fit, test, predict and export print).
"""

from __future__ import annotations

import logging
import warnings

QUIET_LOGS = (
    "💡 Tip:",  # litlogger and litmodels adverts
    "Loading `train_dataloader` to estimate number of stepping batches",
    "Seed set to ",
    "GPU available: ",
    "TPU available: ",
    "HPU available: ",
    "Using bfloat16 Automatic Mixed Precision",  # the CLI's choice (bf16-mixed where the hardware has bf16)
    "Using 16bit Automatic Mixed Precision",
    "Restoring states from the checkpoint path at ",
    "Loaded model weights from the checkpoint at ",
    "Restored all states from the checkpoint at ",  # lr_find's own temporary checkpoint
    "`Trainer.fit` stopped: `max_epochs=",  # the CLI names the checkpoint that holds the result
    "`Trainer.fit` stopped: `max_steps=",
    "Trainer already configured with model summary callbacks",  # imdb's one-line summary
    "`weights_only` was not set, defaulting to `False`",  # lr_find saving its full state: not a load
)

QUIET_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch, about Lightning's own code
    r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",  # the fit's callbacks
    r"Precision \S+ is not supported by the model summary",
    r"Couldn't infer the batch indices fetched from your dataloader",  # the writer keeps its own order
    r"Your `IterableDataset` has `__len__` defined",  # a predict file's count of texts, read in one process
    r"Metric `SpearmanCorrcoef` will save all targets and predictions in the buffer",  # regression's few scores
    r"Total length of `list` across ranks is zero",  # val_dataloader's [] in a fit without validation
)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_LOGS)


def quiet() -> None:
    """Filter the messages above out of Lightning's log and Python's warnings, for this process."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning", "lightning_fabric"):
        for handler in logging.getLogger(name).handlers or logging.getLogger().handlers:
            handler.addFilter(_Drop())
