"""AWS faults between keyguard and the moto server, through the real CLI (issue 8).

A :class:`~tests.fixtures.faultproxy.FaultProxy` sits between botocore and the session's
moto server (``AWS_ENDPOINT_URL`` points at the proxy), so throttling, 5xx, resets, hangs,
a region that is down and credentials that expire mid-run arrive over real sockets and
botocore's own retry code handles them. What must hold:

* transient faults are retried and the inventory is the same as without faults, exit 0,
  and each fault cost exactly one extra request (nothing skipped, nothing read twice);
* persistent faults in one service or region give a partial report naming the source and
  scope, exit 3, with every other part present; the state keeps the last full snapshot
  (snapshots are append-only: a partial run adds one marked with its failed sources) and
  first-seen times survive the outage;
* every wait is bounded by ``[aws] timeout`` and ``max_attempts``;
* expired credentials are a one-line failure naming the fix, never a traceback or a secret.

The fault-free inventory each case compares against is read once per module, through the
same proxy with no rule set.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from typer.testing import Result

from keyguard.sandbox import CLEARED_ENV, sandbox_env
from tests.cli.conftest import Cli
from tests.fixtures.aws import REGIONS, AwsSandbox, leaked_slices
from tests.fixtures.faultproxy import FaultProxy, Rule, Seen
from tests.fixtures.faultproxy import _describe as describe

SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam")
#: Key fields that depend on the clock or the state file, not on what AWS answered.
VOLATILE = frozenset({"age_days", "first_seen"})
Keys = list[dict[str, object]]


@dataclass
class Faulty:
    """The CLI pointed at moto through a fault proxy, with one state file per test."""

    cli: Cli
    proxy: FaultProxy
    state: Path

    def configure(self, **aws: int) -> None:
        """Write keyguard.toml: the two sandbox regions plus ``[aws]`` settings."""
        lines = [f"regions = {json.dumps(list(REGIONS))}"]
        lines += [f"{name.replace('_', '-')} = {value}" for name, value in aws.items()]
        (self.cli.workdir / "keyguard.toml").write_text("[aws]\n" + "\n".join(lines) + "\n")

    def run(self, command: str, sources: tuple[str, ...], *extra: str) -> tuple[Result, float]:
        """Run ``keyguard COMMAND`` on ``sources``; returns the result and seconds taken."""
        args = [command, *(a for s in sources for a in ("--source", s)), "--state", str(self.state)]
        started = time.monotonic()
        result = self.cli([*args, *extra])
        return result, time.monotonic() - started

    def inventory(self, *sources: str, extra: tuple[str, ...] = ()) -> tuple[Result, dict[str, object]]:
        """Run ``keyguard inventory -f json`` and parse its report."""
        result, _ = self.run("inventory", sources, "-f", "json", *extra)
        assert "Traceback" not in result.output
        return result, json.loads(result.stdout)


def keys(doc: dict[str, object], source: str, region: str | None = None) -> Keys:
    """One source's keys from a JSON report, without the clock-dependent fields."""
    found = doc["keys"]
    assert isinstance(found, list)
    return [{k: v for k, v in key.items() if k not in VOLATILE} for key in found
            if key["source"] == source and (region is None or key["region"] == region)]


def first_seen(doc: dict[str, object]) -> dict[str, object]:
    """First-seen time of every key in a JSON report, by identity."""
    found = doc["keys"]
    assert isinstance(found, list)
    return {key["identity"]: key["first_seen"] for key in found}


def errors(doc: dict[str, object]) -> list[dict[str, str]]:
    """The report's failures."""
    found = doc["errors"]
    assert isinstance(found, list)
    return found


def calls(log: list[Seen]) -> Counter[tuple[str | None, str | None, str | None]]:
    """Requests per (service, operation, region)."""
    return Counter((s.service, s.operation, s.region) for s in log)


@pytest.fixture
def faulty(cli: Cli, moto_endpoint: str, aws_sandbox: AwsSandbox,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Faulty]:
    with FaultProxy(moto_endpoint, seed=20261128).running() as proxy:
        for var in CLEARED_ENV:
            monkeypatch.delenv(var, raising=False)
        for name, value in sandbox_env(proxy.url).items():
            monkeypatch.setenv(name, value)
        faulty = Faulty(cli, proxy, cli.workdir / "state.db")
        faulty.configure()
        yield faulty


@dataclass(frozen=True, slots=True)
class Clean:
    """The fault-free runs, one per source: its keys and its requests per call."""

    keys: dict[str, Keys]
    calls: dict[str, Counter[tuple[str | None, str | None, str | None]]]


@pytest.fixture(scope="module")
def clean_cache() -> dict[str, Clean]:
    return {}


@pytest.fixture
def clean(faulty: Faulty, clean_cache: dict[str, Clean]) -> Clean:
    """What each AWS source reads with no fault (read once per module)."""
    if "clean" not in clean_cache:
        found = Clean({}, {})
        for source in SOURCES:
            result, doc = faulty.inventory(source, extra=("--no-record",))
            assert result.exit_code == 0, result.stderr
            assert faulty.proxy.log
            assert all(s.fault is None for s in faulty.proxy.log)
            found.keys[source] = keys(doc, source)
            assert found.keys[source]
            found.calls[source] = calls(faulty.proxy.log)
            faulty.proxy.clear()
        clean_cache["clean"] = found
    return clean_cache["clean"]


# -- transient faults: retried to the same inventory -------------------------------------------

TRANSIENT = {
    # (JSON protocol throttling: test_throttling_backs_off_before_retrying)
    # Query protocol: <Code>Throttling</Code>, on STS (the login check) and on IAM.
    # NOTE: IAM faults sit on a late call: after one throttle botocore's adaptive client-side
    # rate limiter slows the rest of that client's calls (the 80-call per-user fan-out then
    # takes ~15 s instead of ~1 s), which is by design and not what these cases measure.
    "query-throttling-sts": ("aws-iam", Rule("throttle", service="sts", first=1), {}),
    "query-throttling-iam": ("aws-iam", Rule("throttle", service="iam",
                                             operation="ListServiceSpecificCredentials",
                                             first=2), {}),
    "500": ("aws-secretsmanager", Rule("status", status=500, service="secretsmanager",
                                       region="eu-west-1", first=2), {}),
    "503": ("aws-ssm", Rule("status", status=503, service="tagging", first=2), {}),
    "503-every-2nd": ("aws-secretsmanager", Rule("status", status=503, service="secretsmanager",
                                                 every=2), {}),
    "connection-reset": ("aws-secretsmanager", Rule("reset", service="secretsmanager",
                                                    region="us-east-1", first=2), {}),
    # A request held past the client's read timeout, once: botocore gives up and asks again.
    "hang": ("aws-secretsmanager", Rule("hang", service="secretsmanager", region="eu-west-1",
                                        first=1, hang_s=30), {"timeout": 3}),
    # Seeded coin flips: half of the Secrets Manager calls throttled, wherever they fall
    # (the proxy's seed fixes the sequence of coin flips, so at least one always lands).
    "random-throttling": ("aws-secretsmanager", Rule("throttle", service="secretsmanager",
                                                     probability=0.5), {}),
}


@pytest.mark.parametrize("case", list(TRANSIENT))
def test_transient_fault_is_retried_to_the_same_inventory(
    case: str, faulty: Faulty, clean: Clean
) -> None:
    source, template, aws = TRANSIENT[case]
    rule = faulty.proxy.add(dataclasses.replace(template))  # fresh counters per run
    faulty.configure(**aws)
    result, doc = faulty.inventory(source, extra=("--no-record",))
    assert result.exit_code == 0, result.stderr
    assert errors(doc) == []
    assert keys(doc, source) == clean.keys[source]
    assert rule.injected >= 1
    if template.first is not None:
        assert rule.injected == template.first
    # every fault cost exactly one more request of the same call: retried, nothing skipped
    faulted = [s for s in faulty.proxy.log if s.fault is not None]
    assert len(faulted) == rule.injected
    seen = calls(faulty.proxy.log)
    for call in {(s.service, s.operation, s.region) for s in faulted}:
        injected = sum(1 for s in faulted if (s.service, s.operation, s.region) == call)
        assert seen[call] == clean.calls[source][call] + injected, call
    # and each retry came after the fault it answers
    for fault in faulted:
        assert any(s.at > fault.at and s.fault is None and (s.service, s.operation, s.region)
                   == (fault.service, fault.operation, fault.region) for s in faulty.proxy.log)


def test_throttling_backs_off_before_retrying(faulty: Faulty, clean: Clean) -> None:
    """Three JSON-protocol throttles in a row on one region's first call: waited out.

    The first call of a region is the fail-fast reachability probe; a throttle proves the
    endpoint is up, so it must not drop the region (it did before issue 8).
    """
    faulty.proxy.add(Rule("throttle", service="ssm", operation="DescribeParameters",
                          region="eu-west-1", first=3))
    result, doc = faulty.inventory("aws-ssm", extra=("--no-record",))
    assert result.exit_code == 0, result.stderr
    assert keys(doc, "aws-ssm") == clean.keys["aws-ssm"]
    chain = [s for s in faulty.proxy.log
             if (s.service, s.operation, s.region) == ("ssm", "DescribeParameters", "eu-west-1")]
    assert [s.fault for s in chain[:4]] == ["throttle"] * 3 + [None]
    # the probe gave up after its three tries (standard mode, 2 retries) and the listing,
    # with its own retry budget, read every page: one request fewer than "clean + 3"
    assert len(chain) == clean.calls["aws-ssm"][("ssm", "DescribeParameters", "eu-west-1")] + 2
    gaps = [b.at - a.at for a, b in itertools.pairwise(chain[:4])]
    # NOTE: jitter is uniform in [0, 2**n) seconds for throttling, so only the sum of three
    # waits has a floor worth asserting; an immediate retry would be ~1 ms each.
    assert sum(gaps) > 0.05, gaps
    assert max(gaps) < 10


# -- persistent faults: partial report, exit 3, the rest intact --------------------------------


def snapshots(state: Path) -> list[tuple[int, int, list[str]]]:
    """(id, key count, failed sources) of every stored snapshot, oldest first."""
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT id, key_count, failed_sources FROM snapshots ORDER BY id")
        return [(i, n, json.loads(failed)) for i, n, failed in rows]


def test_a_region_down_is_partial_and_state_keeps_the_full_snapshot(
    faulty: Faulty, clean: Clean
) -> None:
    source = "aws-secretsmanager"
    faulty.configure(max_attempts=3)
    full, before = faulty.inventory(source)
    assert full.exit_code == 0, full.stderr
    total = len(clean.keys[source])
    west = len(keys(before, source, "eu-west-1"))
    assert 0 < west < total
    assert [(n, failed) for _, n, failed in snapshots(faulty.state)] == [(total, [])]

    down = faulty.proxy.region_down("eu-west-1")
    started = time.monotonic()
    result, doc = faulty.inventory(source, extra=("--diff",))
    assert time.monotonic() - started < 30
    assert result.exit_code == 3, result.stderr
    assert doc["partial"] is True
    (error,) = errors(doc)
    assert (error["source"], error["scope"]) == (source, "eu-west-1")
    assert error["message"].startswith(f"{source} [eu-west-1]: cannot reach the AWS endpoint")
    assert "\n" not in error["message"] + error["hint"]
    assert "'eu-west-1'" in error["hint"]
    assert "partial result, exit 3" in result.stderr
    # the region that answered is complete; the other is absent
    assert keys(doc, source) == [k for k in clean.keys[source] if k["region"] == "us-east-1"]
    assert down.injected >= 2
    # a key that could not be read is not reported gone
    changes = doc["changes"]
    assert isinstance(changes, list)
    assert [c["change"] for c in changes if c["change"] == "removed"] == []
    # the full snapshot is still there, untouched; the partial one is added and marked
    stored = snapshots(faulty.state)
    assert [(n, failed) for _, n, failed in stored] == [(total, []), (total - west, [source])]
    with sqlite3.connect(faulty.state) as db:
        (kept,) = db.execute("SELECT COUNT(*) FROM snapshot_keys WHERE snapshot_id = ?",
                             (stored[0][0],)).fetchone()
    assert kept == total

    # the region is back: nothing changed in AWS, so nothing is "added" (the diff compares
    # unread keys with their last known record), and first-seen times survived the outage
    faulty.proxy.clear()
    back, after = faulty.inventory(source, extra=("--diff",))
    assert back.exit_code == 0, back.stderr
    assert after["changes"] == []
    assert first_seen(after) == first_seen(before)


def test_a_service_throttled_for_good_is_partial_and_bounded(faulty: Faulty, clean: Clean) -> None:
    faulty.configure(max_attempts=1)
    throttled = faulty.proxy.add(Rule("throttle", service="ssm"))
    started = time.monotonic()
    result, doc = faulty.inventory("aws-secretsmanager", "aws-ssm", extra=("--no-record",))
    assert time.monotonic() - started < 30
    assert result.exit_code == 3, result.stderr
    assert {(e["source"], e["scope"]) for e in errors(doc)} == {
        ("aws-ssm", region) for region in REGIONS}
    for error in errors(doc):
        assert "throttled after retries (ThrottlingException)" in error["message"]
        assert "max_attempts" in error["hint"]
    assert keys(doc, "aws-ssm") == []
    assert keys(doc, "aws-secretsmanager") == clean.keys["aws-secretsmanager"]
    # bounded: per region, the probe's 3 tries, then 1 + max_attempts for the listing
    # NOTE: botocore's max_attempts counts retries, so the total per call is one more.
    assert throttled.injected == len(REGIONS) * (3 + 2)


def test_a_hung_region_is_bounded_by_the_configured_timeout(faulty: Faulty, clean: Clean) -> None:
    faulty.configure(timeout=1, max_attempts=2)
    hung = faulty.proxy.add(Rule("hang", service="secretsmanager", region="eu-west-1", hang_s=60))
    started = time.monotonic()
    result, doc = faulty.inventory("aws-secretsmanager", extra=("--no-record",))
    elapsed = time.monotonic() - started
    assert result.exit_code == 3, result.stderr
    # NOTE: the proxy holds each request 60 s; the client gave up after ~1 s per attempt.
    assert elapsed < 15
    assert hung.injected == 3  # the fail-fast probe's three tries; the listing never ran
    (error,) = errors(doc)
    assert error["scope"] == "eu-west-1"
    assert "did not answer in time (ReadTimeoutError)" in error["message"]
    assert "[aws] timeout" in error["hint"]
    assert keys(doc, "aws-secretsmanager") == [
        k for k in clean.keys["aws-secretsmanager"] if k["region"] == "us-east-1"]


def test_a_persistent_internal_failure_is_not_mistaken_for_an_emulator_gap(
    faulty: Faulty, clean: Clean
) -> None:
    """A well-formed 500 InternalFailure is AWS failing: exit 3, not a silent skip."""
    faulty.configure(max_attempts=2)
    faulty.proxy.add(Rule("status", status=500, service="iam",
                          operation="ListServiceSpecificCredentials"))
    result, doc = faulty.inventory("aws-iam", extra=("--no-record",))
    assert result.exit_code == 3, result.stderr
    (error,) = errors(doc)
    assert "ListServiceSpecificCredentials" in error["message"]
    assert "InternalFailure, HTTP 500" in error["message"]
    assert keys(doc, "aws-iam") == clean.keys["aws-iam"]  # the access keys are all there


def test_credentials_expiring_mid_run_fail_in_one_line_without_leaking(
    faulty: Faulty, clean: Clean, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(88)
    secret = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+")
                     for _ in range(40))
    token = "FwoGZXIvYXdzE" + "".join(rng.choice("ABCDEFGHIJabcdefghij0123456789") for _ in range(80))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)  # pragma: allowlist secret
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    # the login checks and the first IAM calls pass; then the session's token runs out
    expired = faulty.proxy.add(Rule("expired", service="iam", after=10))
    result, doc = faulty.inventory("aws-iam", "aws-secretsmanager")
    assert result.exit_code == 3, result.stderr
    assert expired.injected > 0
    assert errors(doc)
    for error in errors(doc):
        assert error["source"] == "aws-iam"
        assert "the credentials have expired (ExpiredToken)" in error["message"]
        assert "aws sso login" in error["hint"]
        assert "\n" not in error["message"] + error["hint"]
    # what was read before the expiry is kept, and the other source is complete
    assert 0 < len(keys(doc, "aws-iam")) < len(clean.keys["aws-iam"])
    assert keys(doc, "aws-secretsmanager") == clean.keys["aws-secretsmanager"]

    table, _ = faulty.run("check", ("aws-iam",), "--fail-on", "critical")
    # no critical finding in the sandbox, so the partial read decides: exit 3
    assert table.exit_code == 3, table.stderr
    assert "Traceback" not in table.output
    assert "credentials have expired" in table.stdout
    texts = [result.stdout, result.stderr, table.stdout, table.stderr,
             faulty.state.read_bytes().decode("latin-1")]
    texts += [p.read_bytes().decode("latin-1") for p in faulty.state.parent.glob("state.db-*")]
    assert leaked_slices([secret, token], texts) == []


# -- the proxy's own rules (pure) ---------------------------------------------------------------


def test_fault_rules_schedule_match_and_count() -> None:
    rng = random.Random(1)

    def fire(rule: Rule, times: int) -> list[bool]:
        return [rule.fires(rng) for _ in range(times)]

    assert fire(Rule("reset", first=2), 4) == [True, True, False, False]
    assert fire(Rule("reset", after=2), 4) == [False, False, True, True]
    assert fire(Rule("reset", every=3), 6) == [False, False, True, False, False, True]
    assert all(fire(Rule("reset"), 3))
    coin = Rule("reset", probability=0.25)
    hits = fire(coin, 400)
    assert (coin.matched, coin.injected) == (400, sum(hits))
    assert 60 < sum(hits) < 140
    again = Rule("reset", probability=0.25)  # the same seed gives the same faults
    assert [again.fires(r) for r in [random.Random(5)] for _ in range(50)] == \
        [coin.fires(r) for r in [random.Random(5)] for _ in range(50)]

    rule = Rule("throttle", service="ssm", region="eu-west-1", operation="DescribeParameters")
    assert rule.matches("ssm", "eu-west-1", "DescribeParameters", "/")
    assert not rule.matches("ssm", "us-east-1", "DescribeParameters", "/")
    assert not rule.matches("secretsmanager", "eu-west-1", "DescribeParameters", "/")
    assert Rule("status", path="/v1/organization").matches(None, None, None, "/v1/organization/projects")
    assert not Rule("status", path="/key/list").matches(None, None, None, "/key/info")


def test_requests_are_told_apart_by_protocol_service_region_and_operation() -> None:
    def headers(**values: str) -> Message:
        message = Message()
        for name, value in values.items():
            message[name.replace("_", "-")] = value
        return message

    scope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/{}/{}/aws4_request, SignedHeaders=host"
    json_call = headers(authorization=scope.format("eu-west-1", "ssm"),
                        x_amz_target="AmazonSSM.DescribeParameters",
                        content_type="application/x-amz-json-1.1")
    assert describe(json_call, b"{}") == ("json", "ssm", "eu-west-1", "DescribeParameters")
    query_call = headers(authorization=scope.format("us-east-1", "iam"),
                         content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert describe(query_call, b"Action=ListAccessKeys&Version=2010-05-08&UserName=a") == (
        "query", "iam", "us-east-1", "ListAccessKeys")
    assert describe(headers(authorization="Bearer sk-x"), b"") == ("rest", None, None, None)
