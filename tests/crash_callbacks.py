"""Callbacks for tests/test_resume.py: a real `kill -9`, and a record of what each step trained on."""

import os
import signal

from pytorch_lightning import Callback


class KillAfterStep(Callback):
    """SIGKILL the process once ``step`` optimizer steps are done (before that step's checkpoints)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordBatches(Callback):
    """Append ``step token-ids`` for every optimizer step to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        ids = batch["input_ids"][batch["attention_mask"].bool()].tolist()
        with open(self.path, "a") as f:
            f.write(f"{trainer.global_step} {ids}\n")
