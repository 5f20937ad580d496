"""Starting `imdb`: help and mistakes come back sooner than Lightning alone imports and exits."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.commands import IMDB


def seconds(*command: str) -> float:
    """The best of two runs, so that one busy moment of the machine does not decide."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return min(times)


def test_help_and_a_mistake_start_faster_than_importing_lightning():
    """The imports run with the garbage collector paused and parse-time exits skip the interpreter's
    teardown: 3.2-3.8 s here against 4.9-5.7 s for `import pytorch_lightning.cli` alone (2-core EPYC)."""
    lightning = seconds(sys.executable, "-c", "import pytorch_lightning.cli")
    assert seconds(IMDB, "--help") < lightning
    assert seconds(IMDB, "fit", "--data.batch_sise", "3") < lightning


def test_a_parse_time_exit_keeps_its_output_and_status():
    help_text = subprocess.run([IMDB, "--help"], capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and help_text.stdout.rstrip().endswith("and optimizer.")
    mistake = subprocess.run([IMDB, "fitt"], capture_output=True, text=True, timeout=120)
    assert mistake.returncode == 1
    assert (
        mistake.stderr
        == "imdb: error: no command 'fitt': choose from fit, validate, test, predict, export, serve, sweep, lr_find "
        "(see imdb --help)\n"
    )
