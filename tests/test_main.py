"""Starting `imdb`: help and mistakes come back sooner than Lightning alone imports and exits."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.commands import IMDB


def cpu_seconds(command: list[str]) -> float:
    """The processor time the command used, user and system: unlike its wall time, this barely moves
    when the test's neighbours keep the other core busy."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def test_help_and_a_mistake_start_faster_than_importing_lightning():
    """The imports run with the garbage collector paused and parse-time exits skip the interpreter's
    teardown: 4.4-4.6 s of processor time against 6.2 s for `import pytorch_lightning.cli` alone
    (2-core EPYC). The three commands take turns, two rounds, and each is judged by its best round."""
    commands = {
        "lightning": [sys.executable, "-c", "import pytorch_lightning.cli"],
        "help": [IMDB, "--help"],
        "mistake": [IMDB, "fit", "--data.batch_sise", "3"],
    }
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(2):
        for name, command in commands.items():
            best[name] = min(best[name], cpu_seconds(command))
    assert best["help"] < best["lightning"], best
    assert best["mistake"] < best["lightning"], best


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
