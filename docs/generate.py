"""Write the generated pages of the documentation, or say which are stale: `make reference`.

    .venv/bin/python docs/generate.py            # write them
    .venv/bin/python docs/generate.py --check    # write nothing; exit 1 if one is not current

Two generators: ``docs/cli_reference.py`` (``docs/reference/cli/``, from ``imdb SUB --help``) and
``bench/pages.py`` (``docs/benchmarks/`` and the README's results table, from ``bench/results/``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = (ROOT / "docs" / "cli_reference.py", ROOT / "bench" / "pages.py")


def load(path: Path):
    """A generator script as a module (neither folder is a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is not current")
    args = parser.parse_args()
    stale = []
    for generator in GENERATORS:
        for path, text in load(generator).rendered().items():
            if path.is_file() and path.read_text() == text:
                continue
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if args.check and stale:
        sys.exit(f"not current: {', '.join(stale)}; run `make reference`")
    print(f"{'stale' if args.check else 'written'}: {', '.join(stale) or 'nothing'}")


if __name__ == "__main__":
    main()
