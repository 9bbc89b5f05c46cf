"""Bench: keyguard's three AWS sources against a bare sequential boto3 loop, on one moto server.

Seeds 2,000 secrets + 1,000 parameters (two regions) + 200 IAM users, then alternates,
in one process, (a) keyguard collecting everything through the SOURCES registry (no
values) and (b) a plain sequential boto3 loop making the calls keyguard needs: list
secrets, describe parameters plus ListTagsForResource per parameter, list users plus
ListAccessKeys per user and GetAccessKeyLastUsed per key. Prints median wall times,
keyguard/baseline (target <= 1.3) and this process's peak RSS (target <= 250 MB).

By default the moto server runs in a child process (its own interpreter and GIL, like a
remote AWS endpoint), so this process's RSS is keyguard's, not moto's. ``--in-process``
runs it on a thread here instead; both sides then share one GIL with the server.

    python bench/inventory.py [--rounds 3] [--in-process] [--secrets 2000 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3

from keyguard.config import AwsConfig, Config
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, SourceFailure
from keyguard.sandbox import CLEARED_ENV, sandbox_env, seed, start_moto_server
from keyguard.sources import SOURCES, SourceContext

REGIONS = ("us-east-1", "eu-west-1")
AWS_SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam")


@contextlib.contextmanager
def moto_child() -> Iterator[str]:
    """Run ``python -m moto.server`` on a free loopback port; stop it by its PID."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_keyguard(now: datetime) -> int:
    """Collect with the three AWS sources (one after another, each concurrent inside)."""
    ctx = SourceContext(config=Config(aws=AwsConfig(regions=REGIONS)),
                        fingerprinter=Fingerprinter(b"bench-fingerprint-key-0123456789"), now=now)
    records = 0
    for name in AWS_SOURCES:
        for item in SOURCES.load(name)(ctx).collect():
            if isinstance(item, SourceFailure):
                raise RuntimeError(f"unexpected failure: {item.message}")
            records += isinstance(item, KeyRecord)
    return records


def run_baseline() -> int:
    """The same listing as a plain sequential boto3 loop, with the per-item calls keyguard makes."""
    session = boto3.Session()
    items = 0
    for region in REGIONS:
        sm = session.client("secretsmanager", region_name=region)
        for page in sm.get_paginator("list_secrets").paginate():
            items += len(page["SecretList"])
        ssm = session.client("ssm", region_name=region)
        pages = ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Type", "Option": "Equals", "Values": ["SecureString"]}])
        for described in pages:
            for param in described["Parameters"]:
                ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=param["Name"])
                items += 1
    iam = session.client("iam", region_name=REGIONS[0])
    for users in iam.get_paginator("list_users").paginate():
        for user in users["Users"]:
            for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
                items += 1
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--parameters", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--in-process", action="store_true", help="moto on a thread in this process")
    args = parser.parse_args()

    server = start_moto_server() if args.in_process else moto_child()
    with server as endpoint:
        for var in CLEARED_ENV:
            os.environ.pop(var, None)
        os.environ.update(sandbox_env(endpoint))
        now = datetime.now(UTC)
        summary = seed(endpoint, regions=REGIONS, secrets=args.secrets, parameters=args.parameters,
                       users=args.users, rng=random.Random(2026), now=now, backdate=False, workers=8)
        print(f"seeded in {summary.seconds:.1f}s: {summary.describe()}")
        keyguard_times: list[float] = []
        baseline_times: list[float] = []
        counts: set[tuple[int, int]] = set()
        for round_no in range(1, args.rounds + 1):
            start = time.perf_counter()
            found = run_keyguard(now)
            keyguard_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            listed = run_baseline()
            baseline_times.append(time.perf_counter() - start)
            counts.add((found, listed))
            print(f"round {round_no}: keyguard {keyguard_times[-1]:.2f}s ({found} records), "
                  f"baseline {baseline_times[-1]:.2f}s ({listed} items)")
    keyguard_median = statistics.median(keyguard_times)
    baseline_median = statistics.median(baseline_times)
    ratio = keyguard_median / baseline_median
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    server_where = "in-process" if args.in_process else "child process"
    print(f"moto server: {server_where}")
    print(f"median keyguard {keyguard_median:.2f}s, baseline {baseline_median:.2f}s, "
          f"ratio {ratio:.2f} (target <= 1.3)")
    print(f"peak RSS {peak_mb:.0f} MB (target <= 250)")
    ok = ratio <= 1.3 and peak_mb <= 250 and all(a == b for a, b in counts)
    if not all(a == b for a, b in counts):
        print(f"record/item counts differ: {sorted(counts)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
