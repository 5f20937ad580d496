"""Throughput and latency of `imdb serve` under concurrent clients, with and without server-side batching.

    .venv/bin/python bench/serve_load.py --ckpt_path CKPT --model_dir clf-onnx \
        --archive ../shared/data/imdb/aclImdb_labeled.tar.gz

For each model given (a checkpoint, an export directory, or both, measured in turn) and each setting
(batching: ``--max_batch_size 32 --max_wait_ms 5``; none: ``--max_batch_size 1``) one server is
started on loopback; then 1, 8 and 32 clients each send their share of ``--requests``
requests, one real test review per request, as fast as answers come. Printed and written to
`bench/results/serving.json` (`--out`), with the command, machine and date: requests per second,
and the p50 and p99 latency of a request, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

from tests.commands import Server  # noqa: E402

SETTINGS = {"batching": ["--max_batch_size", "32", "--max_wait_ms", "5"], "none": ["--max_batch_size", "1"]}


def load(server: Server, reviews: list[str], clients: int, requests: int) -> dict:
    """``clients`` threads sending ``requests`` one-review requests in all; rate and latency."""
    latencies: list[float] = []
    errors: list[str] = []
    share = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(index: int) -> None:
        for n in range(share[index]):
            text = reviews[(index * 997 + n) % len(reviews)]
            start = time.perf_counter()
            status, answer = server.post([text])
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(str(answer))

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        sys.exit(f"{len(errors)} requests failed: {errors[0]}")
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests_per_second": round(requests / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * cuts[98], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", help="a checkpoint to serve")
    parser.add_argument("--model_dir", help="an export directory to serve")
    parser.add_argument("--archive", required=True, help="the aclImdb archive, for its test reviews")
    parser.add_argument("--requests", type=int, default=96, help="requests at each number of clients")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", help="the result file (default bench/results/serving.json)")
    args = parser.parse_args()
    if not (args.ckpt_path or args.model_dir):
        parser.error("give --ckpt_path, --model_dir or both")

    from imdb_cli.data import IMDBDataModule

    reviews = IMDBDataModule(source=args.archive, max_test_samples=500).labeled_texts("test").texts
    models = {}
    if args.ckpt_path:
        models["checkpoint"] = ["--ckpt_path", str(Path(args.ckpt_path).resolve())]
    if args.model_dir:
        models[_export_kind(Path(args.model_dir))] = ["--model_dir", str(Path(args.model_dir).resolve())]
    results: dict = {"requests": args.requests, "clients": args.clients, "settings": SETTINGS, "served": {}}
    for model, served in models.items():
        figures_of = results["served"][model] = {}
        for name, setting in SETTINGS.items():
            server = Server(Path.cwd(), *served, *setting)
            try:
                server.post(reviews[:4])  # warm up
                for clients in args.clients:
                    figures = load(server, reviews, clients, args.requests)
                    figures_of[f"{name}, {clients} clients"] = figures
                    print(f"{model}: {name:9s} {clients:3d} clients: {json.dumps(figures)}", flush=True)
            finally:
                server.stop()
    print(json.dumps(results, indent=2))
    record.write("serving", results, args.out)


def _export_kind(directory: Path) -> str:
    """How an export directory computes: "onnx int8", "onnx fp32" or "safetensors"."""
    meta = json.loads((directory / "classifier.json").read_text())
    if meta.get("model_format") != "onnx":
        return "safetensors export"
    return f"onnx {meta['onnx']['quantize'] or 'fp32'}"


if __name__ == "__main__":
    main()
