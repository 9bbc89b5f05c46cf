"""Fuzz the edges users touch: ``keyguard usage scan`` on hostile files, and scrubbing.

* ``usage scan`` on any mix of good, broken and binary records (plain or gzip, cut or
  not): exit 0, 1 or 3 (never 2 for a readable file, never a traceback), each error sample
  on stderr or in the JSON report is ``file:line: reason``, the JSON ``stats`` count what
  the file held, and a key planted in the file appears nowhere in the output.
* :func:`keyguard.redact.scrub` (what every report and error passes through) on
  arbitrary text, including bytes decoded as UTF-8 or Latin-1: it never raises, is
  idempotent, and leaves no token the classifier calls a secret.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from keyguard.classify import classify_token
from keyguard.cli._shared import ExitCode
from keyguard.fakes import fake_key
from keyguard.redact import _TOKEN, scrub
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli  # the fixture
from tests.fuzz.profiles import CLI_DEADLINE, budget

_KINDS = ("anthropic-api", "openai-project", "github-fine-grained-pat", "slack-bot")
_START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _row(n: int, key: str, secret: str, where: str) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": f"req-{n}", "api_key": key, "call_type": "acompletion",
        "startTime": (_START + timedelta(minutes=n)).isoformat(), "model": "gpt-x",
        "prompt_tokens": 10, "completion_tokens": 2, "requester_ip_address": "3.3.3.3",
        "metadata": {"user_api_key_alias": "team-a"}}
    if where != "none":
        row[where] = secret
    return row


@st.composite
def hostile_log(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """A LiteLLM spend log with broken lines, a planted key, maybe gzip'd or cut short."""
    secret = fake_key(draw(st.sampled_from(_KINDS)), random.Random(draw(st.integers())))
    lines: list[bytes] = []
    good = 0
    for n in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["good", "good", "good", "junk", "torn", "wrong"]))
        where = draw(st.sampled_from(["none", "none", "model", "startTime", "prompt_tokens",
                                      "user", "requester_ip_address"]))
        row = _row(n, f"k-{n % 3}", secret, where if kind == "good" else "none")
        line = json.dumps(row).encode()
        if kind == "good":
            good += where not in ("startTime", "prompt_tokens")
            lines.append(line)
        elif kind == "junk":
            lines.append(b"#" + secret.encode() + draw(st.binary(max_size=20)).replace(b"\n", b""))
        elif kind == "torn":
            lines.append(line[: draw(st.integers(1, len(line) - 2))])
        else:
            lines.append(json.dumps({**row, "startTime": secret}).encode())
    body = b"\n".join(lines) + b"\n"
    if draw(st.booleans()):
        body = gzip.compress(body)
        if draw(st.booleans()):
            body = body[: draw(st.integers(2, len(body) - 1))]
            good = -1  # unknown: the cut decides
    return body, secret, good


@given(case=hostile_log())
@budget(0.2, suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=CLI_DEADLINE)
def test_usage_scan_on_hostile_logs(cli: Cli, case: tuple[bytes, str, int]) -> None:
    body, secret, good = case
    log = cli.workdir / f"spend-{random.random():.12f}.jsonl"
    log.write_bytes(body)
    state = cli.workdir / f"state-{log.stem}"
    result = cli(["usage", "scan", str(log), "--state", str(state), "-f", "json",
                  "--input-format", "litellm"])
    assert result.exit_code in (ExitCode.OK, ExitCode.FINDINGS, ExitCode.PARTIAL), result.output
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    stats = report["stats"]
    if good >= 0:
        assert stats["events"] == good, stats
    for sample in report.get("errors", []):
        assert sample.startswith(f"{log}:"), sample
    for start in range(0, len(secret) - 11, 6):
        assert secret[start:start + 12] not in result.output, result.output


_texts = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.builds(lambda pre, k, seed, post: pre + fake_key(k, random.Random(seed)) + post,
              st.text(max_size=20), st.sampled_from(_KINDS), st.integers(),
              st.text(max_size=20)),
)


@given(text=_texts)
@budget(4)
def test_scrub_on_arbitrary_text(text: str) -> None:
    once = scrub(text)
    assert scrub(once) == once
    for token in _TOKEN.findall(once):
        fmt = classify_token(token)
        assert fmt is None or not fmt.secret, token
