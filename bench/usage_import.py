"""Benchmark: usage import throughput and peak memory on a generated LiteLLM spend log.

Writes N LiteLLM rows (with a ~1 KB prompt each) as gzipped JSONL and as one JSON array,
then reads each through UsageReader and reports rows/s and peak RSS growth. Memory must
stay flat as N grows (the reader streams); run with N=200000 and N=1000000 to compare.
Usage: python bench/usage_import.py [N]
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from keyguard.config import UsageConfig
from keyguard.usage.reader import ImportStats, UsageReader


def rows(n: int) -> Iterator[str]:
    """Generated rows, one at a time (never all in memory: RSS is the thing measured)."""
    for i in range(n):
        yield json.dumps({
            "request_id": f"chatcmpl-{i}", "api_key": f"{i % 50:064x}", "call_type": "acompletion",
            "startTime": f"2025-06-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.120",
            "model": "gpt-4o-mini", "prompt_tokens": 500, "completion_tokens": 40, "spend": 0.0004,
            "requester_ip_address": f"198.51.{i % 256}.{i // 256 % 256}",
            "metadata": {"user_api_key_alias": f"svc-{i % 50}"},
            "messages": [{"role": "user", "content": f"ticket {i}: " + "please summarise " * 60}],
        })


def measure(path: Path, label: str, n: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stats = ImportStats()
    count = sum(1 for _ in UsageReader(UsageConfig()).events([path], stats))
    took = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(f"{label:12} {count:>9} events  {n / took:>9.0f} rows/s  {took:6.1f} s  "
          f"peak RSS +{grown / 1024:.0f} MiB  errors={stats.errors}")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp, "spend.jsonl.gz")
        with gzip.open(jsonl, "wt") as f:
            f.writelines(line + "\n" for line in rows(n))
        array = Path(tmp, "spend.json")
        with array.open("w") as f:
            f.write("[")
            for i, line in enumerate(rows(n)):
                f.write(("," if i else "") + line + "\n")
            f.write("]")
        print(f"{n} rows; jsonl.gz {jsonl.stat().st_size >> 20} MiB, "
              f"json array {array.stat().st_size >> 20} MiB")
        measure(jsonl, "jsonl.gz", n)
        measure(array, "json array", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
