"""Bench: `keyguard check` with Prowler-equivalent rules against the bare boto3 floor.

On the 2,000 secrets / 1,000 parameters / 200 IAM users estate (moto server in a child
process), times keyguard collecting what the rules need (aws-iam, aws-secretsmanager) and
evaluating the rules equivalent to Prowler's iam_rotate_access_key_90_days,
iam_user_accesskey_unused, iam_user_two_active_access_key,
secretsmanager_automatic_rotation_enabled and secretsmanager_secret_rotated_periodically,
alternately with a bare sequential boto3 loop making the calls those checks need and
evaluating them inline. Prints medians, the ratio (target <= 1.3) and peak RSS.
With ``--prowler PATH`` (a prowler executable in its own virtual environment) it also
times Prowler's five checks against the same server.

    python bench/check.py [--rounds 3] [--prowler /tmp/prowler-venv/bin/prowler]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from bench.inventory import REGIONS, moto_child
from keyguard.config import AwsConfig, Config, PolicyConfig
from keyguard.engine import evaluate, load_policy
from keyguard.fingerprint import Fingerprinter
from keyguard.inventory import run_inventory
from keyguard.policies import POLICIES
from keyguard.sandbox import CLEARED_ENV, sandbox_env, seed
from keyguard.sources import SourceContext

#: keyguard rules equivalent to the five Prowler checks.
RULES = ("rotation-max-age", "key-unused", "iam-two-active-keys", "rotation-not-configured")
PROWLER_CHECKS = ("iam_rotate_access_key_90_days", "iam_user_accesskey_unused",
                  "iam_user_two_active_access_key", "secretsmanager_automatic_rotation_enabled",
                  "secretsmanager_secret_rotated_periodically")


def run_keyguard(now: datetime) -> int:
    """Inventory the two sources and evaluate only the equivalent rules."""
    config = Config(aws=AwsConfig(regions=REGIONS))
    ctx = SourceContext(config=config, fingerprinter=Fingerprinter(b"bench-fingerprint-key-0123456789"),
                        now=now)
    inventory = run_inventory(["aws-iam", "aws-secretsmanager"], ctx)
    if inventory.failures:
        raise RuntimeError(f"unexpected failure: {inventory.failures[0].message}")
    rules = {rid: {"enabled": rid in RULES} for rid in POLICIES.names()}
    policy = load_policy(PolicyConfig(rules=rules), "bench")
    return len(evaluate(inventory, policy, now, config.labels).findings)


def run_baseline(now: datetime) -> int:
    """Sequential boto3 calls the five checks need, evaluated inline."""
    session = boto3.Session()
    findings = 0
    iam = session.client("iam", region_name=REGIONS[0])
    for users in iam.get_paginator("list_users").paginate():
        for user in users["Users"]:
            keys = iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
            active = [k for k in keys if k["Status"] == "Active"]
            findings += len(active) == 2
            for key in active:
                used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
                findings += (now - key["CreateDate"]).days > 90
                last = used["AccessKeyLastUsed"].get("LastUsedDate")
                findings += last is not None and (now - last).days > 45
    for region in REGIONS:
        sm = session.client("secretsmanager", region_name=region)
        for page in sm.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                findings += not secret.get("RotationEnabled")
                rotated = secret.get("LastRotatedDate") or secret.get("CreatedDate")
                findings += rotated is not None and (now - rotated).days > 90
    return findings


def run_prowler(prowler: str, endpoint: str, out: Path) -> float:
    """Time one Prowler run of the five checks against the same server."""
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    start = time.perf_counter()
    subprocess.run([prowler, "aws", "--checks", *PROWLER_CHECKS, "--region", *REGIONS,
                    "--output-directory", str(out), "--no-banner", "--ignore-exit-code-3"],
                   env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=900)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--parameters", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--prowler", help="path to a prowler executable (own virtualenv)")
    args = parser.parse_args()
    with moto_child() as endpoint:
        for var in CLEARED_ENV:
            os.environ.pop(var, None)
        os.environ.update(sandbox_env(endpoint))
        now = datetime.now(UTC)
        summary = seed(endpoint, regions=REGIONS, secrets=args.secrets, parameters=args.parameters,
                       users=args.users, rng=random.Random(2026), now=now, backdate=False, workers=8)
        print(f"seeded in {summary.seconds:.1f}s: {summary.describe()}")
        kg_times: list[float] = []
        base_times: list[float] = []
        for round_no in range(1, args.rounds + 1):
            start = time.perf_counter()
            found = run_keyguard(now)
            kg_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            floor = run_baseline(now)
            base_times.append(time.perf_counter() - start)
            print(f"round {round_no}: keyguard {kg_times[-1]:.2f}s ({found} findings), "
                  f"boto3 floor {base_times[-1]:.2f}s ({floor} findings)")
        prowler_time = None
        if args.prowler:
            prowler_time = run_prowler(args.prowler, endpoint, Path("/tmp/keyguard-bench-prowler"))
    kg, base = statistics.median(kg_times), statistics.median(base_times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median keyguard check {kg:.2f}s, boto3 floor {base:.2f}s, ratio {kg / base:.2f} "
          "(target <= 1.3)")
    print(f"peak RSS {peak_mb:.0f} MB")
    if prowler_time is not None:
        print(f"prowler (5 checks, same estate) {prowler_time:.2f}s: keyguard is "
              f"{prowler_time / kg:.1f}x faster")
    return 0 if kg / base <= 1.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
