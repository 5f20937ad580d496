"""What ``imdb`` prints besides its own output: the chatter of its libraries, filtered out.

Lightning advertises litlogger and litmodels on every run, warns that a test run lacks the
callbacks of the fit that made its checkpoint, and says it cannot size a bf16 model summary;
PyTorch warns about a deprecation inside Lightning. None of it concerns a user of ``imdb``, who
sees the run's own lines, progress bars, metrics and mistakes instead.
"""

from __future__ import annotations

import logging
import warnings

QUIET_LOGS = (
    "💡 Tip:",  # litlogger and litmodels adverts
    "Loading `train_dataloader` to estimate number of stepping batches",
)

QUIET_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch, about Lightning's own code
    r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",  # the fit's callbacks
    r"Precision \S+ is not supported by the model summary",
    r"Couldn't infer the batch indices fetched from your dataloader",  # the writer keeps its own order
)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_LOGS)


def quiet() -> None:
    """Filter the messages above out of Lightning's log and Python's warnings, for this process."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for handler in logging.getLogger("pytorch_lightning").handlers or logging.getLogger().handlers:
        handler.addFilter(_Drop())
