"""The ``imdb`` console script, and ``python -m imdb_cli``.

torch, Lightning and transformers create millions of long-lived objects as they are imported;
with the garbage collector paused meanwhile, and those objects frozen out of its later scans,
``imdb --help`` started 0.3 to 1 s sooner on a 2-core CPU (CHANGELOG). The allocator is set for
training first (:mod:`imdb_cli.cpu.allocator`).
"""

import gc
import sys

from imdb_cli.cpu.allocator import keep_freed_memory


def main() -> None:
    """Import the command line with the collector paused, then run it."""
    keep_freed_memory()
    gc.disable()
    try:
        from imdb_cli.cli import main as run
    finally:
        gc.freeze()
        gc.enable()
    run(fast_exit=True)


if __name__ == "__main__":
    sys.argv[0] = "imdb"  # the name usage lines show; Lightning relaunches DDP ranks with `-m imdb_cli`
    main()
