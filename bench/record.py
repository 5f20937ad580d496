"""Where a benchmark's figures go: one JSON file in ``bench/results/``, with how and where they were made.

Every benchmark script ends with :func:`write`. The file holds the exact command, the date, the
machine (CPU model, cores, memory, whether it computes bf16 natively, GPU), the code's commit and the
versions of the libraries that did the work, and the figures under ``results``. The benchmark pages
of the documentation (``docs/benchmarks/``) are generated from these files by ``bench/pages.py``;
no figure there is typed by hand.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LIBRARIES = ("torch", "transformers", "pytorch-lightning", "onnxruntime", "fastapi", "accelerate")


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def machine() -> dict:
    """The machine, as a reader comparing figures needs it: CPU, cores, memory, bf16 support, GPU."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9)
    except (ValueError, OSError):
        memory_gb = None
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {
        "cpu": info.get("model name", platform.processor() or platform.machine()),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "bf16": "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none",
        "gpu": gpu,
    }


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def command() -> str:
    """The command line that ran this script, with paths inside the repository made relative to it."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def write(name: str, results: dict, out: str | Path | None = None) -> Path:
    """Write ``results`` with their provenance to ``out`` (default ``bench/results/NAME.json``)."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        "command": command(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine(),
        "commit": _commit(),
        "versions": _versions(),
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results written to {path}", flush=True)
    return path
