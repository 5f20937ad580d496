"""How long `make demo` takes a new user: fit, test, export and predict on 1,000 real reviews.

    .venv/bin/python bench/demo.py --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

Runs `make demo ARCHIVE=...` as a whole, with a home directory of its own so that the token cache
starts cold as on a new machine, and writes the wall time and the demo's scores to
`bench/results/demo.json`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record
from speed import ROOT, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", default=str(ROOT.parent / "shared/data/imdb/aclImdb_labeled.tar.gz"))
    parser.add_argument("--out", help="the result file (default bench/results/demo.json)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imdb-demo-"))
    os.environ["HOME"] = str(work)  # ~/.cache/imdb-cli: a cold token cache
    command = ["make", "-C", str(ROOT), "demo", f"ARCHIVE={Path(args.archive).resolve()}", f"RUNS={work / 'runs'}"]
    seconds, out = timed(command, ROOT)
    results = {
        "seconds": round(seconds, 1),
        "val_acc": float(re.search(r"val_acc=([\d.]+)", out)[1]),
        "test_acc": round(float(re.search(r"test_acc\W+(\d\.\d+)", out)[1]), 4),
        "predictions": len(re.findall(r'^\{"line"', out, re.M)),
    }
    print(results)
    record.write("demo", results, args.out)


if __name__ == "__main__":
    main()
