"""Checkpoints written whole or not at all, and read back by Lightning."""

from __future__ import annotations

import os

import pytest
import torch

from imdb_cli.checkpoints import CheckpointWriter
from imdb_cli.trainer import Trainer


def test_a_checkpoint_is_written_whole_and_read_back(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = CheckpointWriter()
    writer.save_checkpoint({"state_dict": {"w": torch.arange(6.0)}, "epoch": 1}, path)
    assert torch.equal(writer.load_checkpoint(path)["state_dict"]["w"], torch.arange(6.0))
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_a_failed_save_leaves_the_old_checkpoint_and_no_partial_file(tmp_path):
    path = tmp_path / "last.ckpt"
    writer = CheckpointWriter()
    writer.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(OSError, match="disk full"):
        writer.save_checkpoint({"epoch": 2, "fails": _FailsHalfway()}, path)
    assert writer.load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_the_trainer_writes_with_it_unless_given_another():
    from pytorch_lightning.plugins import TorchCheckpointIO

    assert type(Trainer(logger=False).strategy.checkpoint_io) is CheckpointWriter
    own = TorchCheckpointIO()
    assert Trainer(logger=False, plugins=[own]).strategy.checkpoint_io is own


class _FailsHalfway:
    def __reduce__(self):
        raise OSError("disk full")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
