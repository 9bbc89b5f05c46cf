"""Classifier: format table, token flag/no-flag cases, JSON and .env walkers, fingerprints.

Fake keys are built from fixed pseudo-random bodies (``body()``) so lengths are exact and
no real credential appears; the few literal ones carry ``pragma: allowlist secret``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterable

import pytest

from keyguard.classify import (
    ALNUM,
    ALNUM_DASH,
    B64,
    DIGITS,
    FORMATS,
    HEX,
    LOWER_ALNUM,
    UPPER_B32,
    KeyFormat,
    SecretMatch,
    classify_token,
    format_by_kind,
    inspect_value,
    links_of,
    parse_env_line,
    scan_env_text,
)
from keyguard.fakes import fake_aws_pair, fake_key, fake_kinds
from keyguard.fingerprint import Fingerprinter
from keyguard.model import UNKNOWN_KIND, UNKNOWN_PROVIDER, Fingerprint, Kind, Provider
from keyguard.secret import Secret

FP = Fingerprinter(b"keyguard-test-fingerprint-key-01")
FINGERPRINT = re.compile(r"kg1:[0-9a-f]{32}")


def body(n: int, alphabet: str = ALNUM, salt: str = "") -> str:
    """A fixed pseudo-random string: the same on every run, different per (n, alphabet, salt)."""
    rng = random.Random(f"{n}|{alphabet}|{salt}")
    return "".join(rng.choice(alphabet) for _ in range(n))


def fp(value: str) -> Fingerprint:
    return FP.fingerprint(Secret(value))


def name_for(fmt: KeyFormat) -> str | None:
    """A field name that satisfies a row's name hint (None for rows without one)."""
    if fmt.name_hint is None:
        return None
    candidates = [f"{fmt.provider.upper()}_API_KEY", "AWS_SECRET_ACCESS_KEY", fmt.provider, fmt.kind]
    for name in candidates:
        if re.search(fmt.name_hint, name, re.IGNORECASE):
            return name
    raise AssertionError(f"no test name satisfies the hint of {fmt.kind}: {fmt.name_hint}")


def assert_hidden(matches: Iterable[SecretMatch], *values: str) -> None:
    """No match may carry a secret value (or its stripped form) anywhere in its repr."""
    for match in matches:
        text = repr(match)
        for value in values:
            assert value.strip() not in text


# Shared fake tokens (module constants so JSON/env cases reuse exact values).
OPENAI_PROJECT = "sk-proj-" + body(74, ALNUM_DASH, "p") + "T3BlbkFJ" + body(74, ALNUM_DASH, "q")
ANTHROPIC_API = "sk-ant-api03-" + body(93, ALNUM_DASH) + "AA"
STRIPE_SECRET = "sk_live_" + body(24, ALNUM, "stripe")
GITHUB_CLASSIC = "ghp_" + body(36, ALNUM, "gh")
AWS_ID = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret  (AWS's documented example id)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # pragma: allowlist secret  (AWS docs)
AWS_TEMP_ID = "ASIA" + body(16, UPPER_B32, "temp")
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + body(180, B64, "session")

# --- flag cases ------------------------------------------------------------------------------

FLAG: list[tuple[str, str, str | None, str]] = [
    # (id, token, field name, expected kind)
    ("anthropic-api", ANTHROPIC_API, None, "anthropic-api"),
    ("anthropic-admin", "sk-ant-admin01-" + body(93, ALNUM_DASH, "adm") + "AA", None, "anthropic-admin"),
    ("anthropic-oauth", "sk-ant-oat01-" + body(95, ALNUM_DASH), None, "anthropic-oauth"),
    ("anthropic-refresh", "sk-ant-ort01-" + body(95, ALNUM_DASH), None, "anthropic-oauth-refresh"),
    ("openai-project-74", OPENAI_PROJECT, None, "openai-project"),
    ("openai-project-58", "sk-proj-" + body(58, ALNUM_DASH) + "T3BlbkFJ" + body(58, ALNUM_DASH, "b"), None, "openai-project"),
    ("openai-svcacct-74", "sk-svcacct-" + body(74, ALNUM_DASH) + "T3BlbkFJ" + body(74, ALNUM_DASH, "b"), None, "openai-svcacct"),
    ("openai-svcacct-58", "sk-svcacct-" + body(58, ALNUM_DASH) + "T3BlbkFJ" + body(58, ALNUM_DASH, "b"), None, "openai-svcacct"),
    ("openai-admin", "sk-admin-" + body(58, ALNUM_DASH) + "T3BlbkFJ" + body(58, ALNUM_DASH, "b"), None, "openai-admin"),
    ("openai-legacy-user", "sk-" + body(20) + "T3BlbkFJ" + body(20, ALNUM, "b"), None, "openai-legacy-user"),
    ("openrouter", "sk-or-v1-" + body(64, HEX), None, "openrouter-api"),
    ("deepseek-by-name", "sk-" + body(32, LOWER_ALNUM), "DEEPSEEK_API_KEY", "deepseek-api"),
    ("aws-akia", AWS_ID, None, "aws-access-key"),
    ("aws-abia", "ABIA" + body(16, UPPER_B32), None, "aws-access-key"),
    ("aws-acca", "ACCA" + body(16, UPPER_B32), None, "aws-access-key"),
    ("aws-a3t", "A3TX" + body(16, UPPER_B32), None, "aws-access-key"),
    ("aws-asia", AWS_TEMP_ID, None, "aws-temporary-key"),
    ("aws-secret-by-name", AWS_SECRET, "aws_secret_access_key", "aws-secret-key"),
    ("aws-bedrock-long", "ABSK" + body(132, B64), None, "aws-bedrock-api-key"),
    ("aws-bedrock-short", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t" + body(200, B64), None, "aws-bedrock-short-term"),
    ("github-classic", GITHUB_CLASSIC, None, "github-classic-pat"),
    ("github-classic-longer", "ghp_" + body(60), None, "github-classic-pat"),
    ("github-fine-grained", "github_pat_" + body(82, ALNUM + "_"), None, "github-fine-grained-pat"),
    ("github-oauth", "gho_" + body(36), None, "github-oauth"),
    ("github-app-user", "ghu_" + body(36), None, "github-app-user"),
    ("github-app-installation", "ghs_" + body(36), None, "github-app-installation"),
    ("github-refresh", "ghr_" + body(36), None, "github-refresh"),
    ("stripe-secret-live", STRIPE_SECRET, None, "stripe-secret"),
    ("stripe-secret-test", "sk_test_" + body(99), None, "stripe-secret"),
    ("stripe-restricted", "rk_live_" + body(99), None, "stripe-restricted"),
    ("stripe-restricted-test", "rk_test_" + body(24), None, "stripe-restricted"),
    ("stripe-publishable", "pk_test_" + body(99), None, "stripe-publishable"),
    ("slack-bot", "xoxb-" + body(12, DIGITS) + "-" + body(13, DIGITS) + "-" + body(24), None, "slack-bot"),
    ("slack-legacy-bot", "xoxb-" + body(9, DIGITS) + "-" + body(24), None, "slack-legacy-bot"),
    ("slack-user", "xoxp-" + "-".join(body(12, DIGITS, s) for s in "abc") + "-" + body(32, HEX), None, "slack-user"),
    ("slack-app", "xapp-1-A" + body(10, UPPER_B32) + "-" + body(13, DIGITS) + "-" + body(64, HEX), None, "slack-app"),
    ("slack-config-refresh", "xoxe-1-" + body(146), None, "slack-refresh"),
    ("slack-config-access", "xoxe.xoxb-1-" + body(164), None, "slack-refresh"),
    ("slack-webhook", "https://hooks.slack.com/services/T" + body(10, UPPER_B32) + "/B" + body(10, UPPER_B32) + "/" + body(24), None, "slack-webhook"),
    ("slack-legacy", "xoxs-" + body(10, DIGITS) + "-" + body(11, DIGITS) + "-" + body(12, DIGITS) + "-" + body(32, HEX), None, "slack-legacy"),
    ("slack-legacy-workspace", "xoxr-" + body(40), None, "slack-legacy-workspace"),
    ("google", "AIzaSy" + body(33, ALNUM_DASH), None, "google-api"),
    ("huggingface-user", "hf_" + body(34), None, "huggingface-user"),
    ("huggingface-org", "api_org_" + body(34), None, "huggingface-org"),
    ("gitlab-pat", "glpat-" + body(20, ALNUM_DASH), None, "gitlab-pat"),
    ("gitlab-pat-routable", "glpat-" + body(40, ALNUM_DASH) + ".01" + body(7, LOWER_ALNUM), None, "gitlab-pat"),
    ("gitlab-deploy", "gldt-" + body(20, ALNUM_DASH), None, "gitlab-deploy-token"),
    ("gitlab-runner", "glrt-" + body(20, ALNUM_DASH), None, "gitlab-runner-token"),
    ("gitlab-trigger", "glptt-" + body(40, HEX), None, "gitlab-pipeline-trigger"),
    ("gitlab-ci-job", "glcbt-64_" + body(20, ALNUM_DASH), None, "gitlab-ci-job-token"),
    ("gitlab-oauth-app", "gloas-" + body(64, ALNUM_DASH), None, "gitlab-oauth-app-secret"),
    ("gitlab-scim", "glsoat-" + body(20, ALNUM_DASH), None, "gitlab-scim-token"),
    ("gitlab-feed", "glft-" + body(20, ALNUM_DASH), None, "gitlab-feed-token"),
    ("gitlab-mail", "glimt-" + body(25, ALNUM_DASH), None, "gitlab-incoming-mail-token"),
    ("gitlab-agent", "glagent-" + body(50, ALNUM_DASH), None, "gitlab-agent-token"),
    ("gitlab-feature-flags", "glffct-" + body(20, ALNUM_DASH), None, "gitlab-feature-flag-token"),
    ("groq-56", "gsk_" + body(52), None, "groq-api"),
    ("groq-48", "gsk_" + body(48), None, "groq-api"),
    ("xai", "xai-" + body(80, ALNUM + "_"), None, "xai-api"),
    ("sendgrid", "SG." + body(22, ALNUM_DASH) + "." + body(43, ALNUM_DASH), None, "sendgrid-api"),
    ("npm", "npm_" + body(36), None, "npm-token"),
    ("pypi", "pypi-AgEIcHlwaS5vcmc" + body(160, ALNUM_DASH), None, "pypi-token"),
    ("perplexity", "pplx-" + body(48), None, "perplexity-api"),
    ("replicate", "r8_" + body(37), None, "replicate-api"),
    ("twilio-api-key-sid", "SK" + body(32, HEX), None, "twilio-api-key"),
    ("twilio-account-sid", "AC" + body(32, HEX), None, "twilio-account-sid"),
    ("mistral-by-name", body(32), "MISTRAL_API_KEY", "mistral-api"),
    ("mistral-by-json-path", body(32), "providers.mistral.key", "mistral-api"),
    ("cohere-by-name", body(40), "COHERE_API_KEY", "cohere-api"),
    ("cohere-co-api-key", body(40), "CO_API_KEY", "cohere-api"),
]


@pytest.mark.parametrize(("token", "name", "kind"), [c[1:] for c in FLAG], ids=[c[0] for c in FLAG])
def test_flag(token: str, name: str | None, kind: str) -> None:
    fmt = classify_token(token, name)
    assert fmt is not None
    assert fmt.kind == kind
    assert re.fullmatch(fmt.pattern, token)


def test_flag_table_covers_most_of_the_format_table() -> None:
    """Hand-written cases (besides the generated fakes) for every provider in the table."""
    covered = {c[3] for c in FLAG}
    assert len(covered) >= 25
    assert {f.provider for f in FORMATS} == {
        f.provider for f in FORMATS if f.kind in covered
    }


def test_surrounding_whitespace_is_ignored() -> None:
    fmt = classify_token(f"  {GITHUB_CLASSIC}\n", None)
    assert fmt is not None
    assert fmt.kind == "github-classic-pat"


# --- no-flag near misses ---------------------------------------------------------------------

NO_FLAG: list[tuple[str, str, str | None]] = [
    ("anthropic-short-body", "sk-ant-api03-" + body(92, ALNUM_DASH) + "AA", None),
    ("anthropic-long-body", "sk-ant-api03-" + body(94, ALNUM_DASH) + "AA", None),
    ("anthropic-wrong-tail", "sk-ant-api03-" + body(93, ALNUM_DASH) + "AB", None),
    ("anthropic-wrong-version", "sk-ant-api04-" + body(93, ALNUM_DASH) + "AA", None),
    ("anthropic-oauth-too-short", "sk-ant-oat01-" + body(39, ALNUM_DASH), None),
    ("openai-no-marker", "sk-proj-" + body(156, ALNUM_DASH), None),
    ("openai-short-half", "sk-proj-" + body(57, ALNUM_DASH) + "T3BlbkFJ" + body(58, ALNUM_DASH), None),
    ("openai-mixed-halves", "sk-proj-" + body(58, ALNUM_DASH) + "T3BlbkFJ" + body(74, ALNUM_DASH), None),
    ("openai-legacy-dash", "sk-" + body(19) + "-T3BlbkFJ" + body(20), None),
    ("openrouter-upper-hex", "sk-or-v1-" + body(64, "0123456789ABCDEF"), None),
    ("openrouter-short", "sk-or-v1-" + body(63, HEX), None),
    ("deepseek-without-name", "sk-" + body(32, LOWER_ALNUM), None),
    ("deepseek-other-name", "sk-" + body(32, LOWER_ALNUM), "OPENAI_API_KEY"),
    ("aws-id-15", "AKIA" + body(15, UPPER_B32), None),
    ("aws-id-17", "AKIA" + body(17, UPPER_B32), None),
    ("aws-id-not-base32", "AKIA" + body(16, "0189"), None),
    ("aws-id-lowercase", "akia" + body(16, UPPER_B32), None),
    ("aws-iam-user-unique-id", "AIDA" + body(16, UPPER_B32), None),
    ("aws-role-unique-id", "AROA" + body(16, UPPER_B32), None),
    ("aws-secret-without-name", AWS_SECRET, None),
    ("aws-secret-39-chars", AWS_SECRET[:39], "aws_secret_access_key"),
    ("bedrock-too-short", "ABSK" + body(108, B64), None),
    ("github-35", "ghp_" + body(35), None),
    ("github-unknown-type", "ghx_" + body(36), None),
    ("github-dash", "ghp-" + body(36), None),
    ("github-fine-grained-81", "github_pat_" + body(81), None),
    ("stripe-too-short", "sk_live_" + body(9), None),
    ("stripe-unknown-mode", "sk_demo_" + body(24), None),
    ("stripe-publishable-prod", "pk_prod_" + body(24), None),
    ("slack-bot-too-few-digits", "xoxb-123-456", None),
    ("slack-unknown-type", "xoxz-" + body(12, DIGITS) + "-" + body(24), None),
    ("slack-webhook-http", "http://hooks.slack.com/services/T" + body(10, UPPER_B32) + "/B" + body(10, UPPER_B32) + "/" + body(24), None),
    ("google-34", "AIza" + body(34, ALNUM_DASH), None),
    ("google-unicode-lookalike", "AIza" + "\u0430" * 35, None),
    ("github-pat-unicode-word-chars", "github_pat_" + "\u0436" * 82, None),
    ("huggingface-33", "hf_" + body(33), None),
    ("huggingface-dash", "hf-" + body(34), None),
    ("gitlab-19", "glpat-" + body(19, ALNUM_DASH), None),
    ("gitlab-scim-21", "glsoat-" + body(21, ALNUM_DASH), None),
    ("gitlab-trigger-upper", "glptt-" + body(40, "ABCDEF0123456789"), None),
    ("groq-47", "gsk_" + body(47), None),
    ("groq-57", "gsk_" + body(57), None),
    ("xai-79", "xai-" + body(79), None),
    ("sendgrid-no-dot", "SG." + body(66, ALNUM), None),
    ("npm-35", "npm_" + body(35), None),
    ("pypi-not-macaroon", "pypi-" + body(100, ALNUM_DASH), None),
    ("perplexity-47", "pplx-" + body(47), None),
    ("replicate-36", "r8_" + body(36), None),
    ("twilio-31-hex", "SK" + body(31, HEX), None),
    ("twilio-non-hex", "SK" + body(32, "ghijkl"), None),
    ("bare-32-no-name", body(32), None),
    ("bare-32-generic-name", body(32), "API_KEY"),
    ("bare-40-no-name", body(40), None),
    ("bare-40-generic-secret-name", body(40, ALNUM, "x"), "CLIENT_SECRET"),
    ("mistral-wrong-length", body(40), "MISTRAL_API_KEY"),
    ("cohere-wrong-length", body(32), "COHERE_API_KEY"),
    ("quoted-token", f'"{GITHUB_CLASSIC}"', None),
    ("inner-space", GITHUB_CLASSIC[:20] + " " + GITHUB_CLASSIC[20:], None),
    ("two-tokens", GITHUB_CLASSIC + " " + STRIPE_SECRET, None),
    ("prefix-only", "sk-ant-api03-", None),
    ("empty", "", None),
    ("blank", " \t\n", None),
    ("huge", "ghp_" + body(9000), None),
]


@pytest.mark.parametrize(("token", "name"), [c[1:] for c in NO_FLAG], ids=[c[0] for c in NO_FLAG])
def test_no_flag(token: str, name: str | None) -> None:
    assert classify_token(token, name) is None


@pytest.mark.parametrize(("token", "name"), [c[1:] for c in NO_FLAG], ids=[c[0] for c in NO_FLAG])
def test_near_miss_value_is_unknown_never_guessed(token: str, name: str | None) -> None:
    matches = inspect_value(Secret(token), FP, name)
    if not token.strip():
        assert matches == []
        return
    assert [(m.provider, m.kind) for m in matches] == [(UNKNOWN_PROVIDER, UNKNOWN_KIND)]
    assert matches[0].fingerprint == fp(token)
    assert_hidden(matches, token)


# --- the format table ------------------------------------------------------------------------


def test_kinds_are_unique() -> None:
    kinds = [f.kind for f in FORMATS]
    assert len(kinds) == len(set(kinds))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_row_is_well_formed(fmt: KeyFormat) -> None:
    assert re.fullmatch(r"[a-z0-9]+", fmt.provider)
    assert re.fullmatch(rf"{fmt.provider}(-[a-z0-9]+)+", fmt.kind), "kind = provider-..."
    assert fmt.kind != UNKNOWN_KIND
    assert fmt.description
    re.compile(fmt.pattern)
    if fmt.name_hint is not None:
        re.compile(fmt.name_hint)
    assert format_by_kind(fmt.kind) is fmt


def test_public_identifier_rows() -> None:
    """Rows that are ids, not secrets: they are classified but never reported as secrets."""
    assert {f.kind for f in FORMATS if not f.secret} == {
        "aws-access-key", "aws-temporary-key", "stripe-publishable", "twilio-api-key",
        "twilio-account-sid",
    }


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_fake_classifies_back_to_its_own_kind(fmt: KeyFormat) -> None:
    rng = random.Random(fmt.kind)
    for _ in range(25):
        token = fake_key(fmt.kind, rng)
        assert re.fullmatch(fmt.pattern, token)
        assert classify_token(token, name_for(fmt)) is fmt


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.name_hint], ids=lambda f: f.kind)
def test_name_hint_rows_are_never_guessed_without_their_name(fmt: KeyFormat) -> None:
    token = fake_key(fmt.kind, random.Random(1))
    assert classify_token(token, None) is None
    assert classify_token(token, "SOME_API_KEY") is None


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.secret], ids=lambda f: f.kind)
def test_fake_in_env_and_json_is_found_with_its_kind(fmt: KeyFormat) -> None:
    token = fake_key(fmt.kind, random.Random(7))
    name = name_for(fmt) or "SERVICE_CREDENTIAL_VALUE"
    # An AWS secret under an AWS field name is reported as the credential pair's kind.
    kind = "aws-access-key" if fmt.kind == "aws-secret-key" else fmt.kind
    env = list(scan_env_text(f"# header\n{name}={token}\n", FP))
    assert [(m.kind, m.field, m.line, m.fingerprint) for m in env] == [(kind, name, 2, fp(token))]
    doc = list(inspect_value(Secret(json.dumps({"outer": {name: token}})), FP))
    assert [(m.kind, m.field, m.fingerprint) for m in doc] == [(kind, f"outer.{name}", fp(token))]
    assert_hidden(env + doc, token)


def test_fakes_module() -> None:
    assert fake_kinds() == [f.kind for f in FORMATS]
    with pytest.raises(KeyError):
        fake_key("no-such-kind", random.Random(0))
    key_id, secret = fake_aws_pair(random.Random(0))
    assert classify_token(key_id) is format_by_kind("aws-access-key")
    assert classify_token(secret, "aws_secret_access_key") is format_by_kind("aws-secret-key")
    assert fake_key("groq-api", random.Random(3)) == fake_key("groq-api", random.Random(3))


def test_secret_match_has_no_value_field() -> None:
    assert [f.name for f in dataclasses.fields(SecretMatch)] == [
        "provider", "kind", "fingerprint", "field", "key_id", "line", "links",
    ]


# --- bare values -----------------------------------------------------------------------------


def test_bare_known_secret() -> None:
    matches = inspect_value(Secret(ANTHROPIC_API), FP)
    assert matches == [SecretMatch(Provider("anthropic"), Kind("anthropic-api"), fp(ANTHROPIC_API),
                                   links=links_of(ANTHROPIC_API, FP))]
    assert_hidden(matches, ANTHROPIC_API)


def test_bare_aws_id_is_reported_as_a_public_id() -> None:
    matches = inspect_value(Secret(AWS_ID), FP)
    assert [(m.kind, m.key_id) for m in matches] == [("aws-access-key", AWS_ID)]


def test_bare_value_with_name_hint() -> None:
    token = body(32, ALNUM, "mistral")
    assert [m.kind for m in inspect_value(Secret(token), FP, "MISTRAL_API_KEY")] == ["mistral-api"]
    assert [m.kind for m in inspect_value(Secret(token), FP)] == [UNKNOWN_KIND]


@pytest.mark.parametrize(
    "value",
    ["correct-horse-battery-staple", "p@ss w0rd!", "\u00fcnic\u00f6de-\u5bc6\u7801-value", "0" * 64],
)
def test_unknown_secret_is_reported_with_a_fingerprint(value: str) -> None:
    [match] = inspect_value(Secret(value), FP)
    assert (match.provider, match.kind) == (UNKNOWN_PROVIDER, UNKNOWN_KIND)
    assert match.fingerprint == fp(value)
    assert FINGERPRINT.fullmatch(match.fingerprint)
    assert (match.field, match.key_id, match.line) == (None, None, None)
    assert_hidden([match], value)


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_empty_value_has_no_match(value: str) -> None:
    assert inspect_value(Secret(value), FP) == []


# --- JSON secrets ----------------------------------------------------------------------------


def _summary(matches: list[SecretMatch]) -> list[tuple[str, str, str | None, str | None]]:
    return [(m.provider, m.kind, m.field, m.key_id) for m in matches]


def test_json_single_api_key() -> None:
    value = json.dumps({"api_key": OPENAI_PROJECT})
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [("openai", "openai-project", "api_key", None)]
    assert matches[0].fingerprint == fp(OPENAI_PROJECT)
    assert matches[0].line is None
    assert_hidden(matches, OPENAI_PROJECT)


def test_json_several_fields_each_classified() -> None:
    value = json.dumps(
        {
            "openai": OPENAI_PROJECT,
            "stripe_secret_key": STRIPE_SECRET,
            "region": "eu-west-1",
            "port": 5432,
            "enabled": True,
            "db_password": "hunter2-but-longer",
        }
    )
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [
        ("openai", "openai-project", "openai", None),
        ("stripe", "stripe-secret", "stripe_secret_key", None),
        ("unknown", "unknown", "db_password", None),
    ]
    assert_hidden(matches, OPENAI_PROJECT, STRIPE_SECRET, "hunter2-but-longer")


def test_json_aws_pair_is_one_match_with_key_id() -> None:
    value = json.dumps({"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET})
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [("aws", "aws-access-key", "aws_secret_access_key", AWS_ID)]
    assert matches[0].fingerprint == fp(AWS_SECRET)
    assert_hidden(matches, AWS_SECRET)


@pytest.mark.parametrize(
    ("id_field", "secret_field"),
    [("AccessKeyId", "SecretAccessKey"), ("access_key", "secret_key"), ("accessKeyId", "secretAccessKey")],
)
def test_json_aws_pair_field_spellings(id_field: str, secret_field: str) -> None:
    value = json.dumps({id_field: AWS_ID, secret_field: AWS_SECRET})
    assert _summary(inspect_value(Secret(value), FP)) == [("aws", "aws-access-key", secret_field, AWS_ID)]


def test_json_aws_temporary_credentials() -> None:
    value = json.dumps(
        {
            "AccessKeyId": AWS_TEMP_ID,
            "SecretAccessKey": AWS_SECRET,
            "SessionToken": AWS_SESSION_TOKEN,
            "Expiration": "2026-01-01T00:00:00Z",
        }
    )
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [
        ("aws", "aws-temporary-key", "SecretAccessKey", AWS_TEMP_ID),
        ("unknown", "unknown", "SessionToken", None),
    ]
    assert_hidden(matches, AWS_SECRET, AWS_SESSION_TOKEN)


def test_json_nested_pairs_join_within_their_own_object() -> None:
    other_id, other_secret = fake_aws_pair(random.Random(5))
    value = json.dumps(
        {
            "prod": {"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET},
            "dev": {"aws_access_key_id": other_id, "aws_secret_access_key": other_secret},
            "tools": {"github": {"token": GITHUB_CLASSIC}},
        }
    )
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [
        ("aws", "aws-access-key", "prod.aws_secret_access_key", AWS_ID),
        ("aws", "aws-access-key", "dev.aws_secret_access_key", other_id),
        ("github", "github-classic-pat", "tools.github.token", None),
    ]
    assert [m.fingerprint for m in matches] == [fp(AWS_SECRET), fp(other_secret), fp(GITHUB_CLASSIC)]


def test_json_aws_secret_without_id() -> None:
    value = json.dumps({"aws_secret_access_key": AWS_SECRET})
    assert _summary(inspect_value(Secret(value), FP)) == [
        ("aws", "aws-access-key", "aws_secret_access_key", None)
    ]


def test_json_aws_pair_in_separate_objects_is_not_joined() -> None:
    value = json.dumps({"a": {"aws_access_key_id": AWS_ID}, "b": {"aws_secret_access_key": AWS_SECRET}})
    assert _summary(inspect_value(Secret(value), FP)) == [
        ("aws", "aws-access-key", "b.aws_secret_access_key", None)
    ]


def test_json_secret_key_that_is_not_aws_shaped_is_not_called_aws() -> None:
    """Regression: any SECRET_KEY value used to be reported as an aws-access-key."""
    value = json.dumps({"SECRET_KEY": "django-insecure-" + body(50, ALNUM, "dj")})
    assert _summary(inspect_value(Secret(value), FP)) == [("unknown", "unknown", "SECRET_KEY", None)]


def test_json_non_id_value_in_an_id_field_never_becomes_key_id() -> None:
    """Regression: the value of an access_key field was copied into key_id verbatim."""
    leaked = "minio-" + body(30, ALNUM, "minio")
    value = json.dumps({"access_key": leaked, "secret_key": AWS_SECRET})
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [
        ("aws", "aws-access-key", "secret_key", None),
        ("unknown", "unknown", "access_key", None),
    ]
    assert matches[1].fingerprint == fp(leaked)
    assert_hidden(matches, leaked, AWS_SECRET)


def test_json_placeholder_aws_secret_is_skipped() -> None:
    value = json.dumps({"aws_access_key_id": AWS_ID, "aws_secret_access_key": "x" * 40, "token": GITHUB_CLASSIC})
    assert _summary(inspect_value(Secret(value), FP)) == [("github", "github-classic-pat", "token", None)]


def test_json_arrays_are_walked() -> None:
    """Regression: keys inside arrays were invisible and the whole value came back unknown."""
    value = json.dumps(
        {
            "keys": [{"name": "ci", "api_key": OPENAI_PROJECT}, GITHUB_CLASSIC],
            "aws": [{"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET}],
        }
    )
    matches = inspect_value(Secret(value), FP)
    assert _summary(matches) == [
        ("aws", "aws-access-key", "aws[0].aws_secret_access_key", AWS_ID),
        ("openai", "openai-project", "keys[0].api_key", None),
        ("github", "github-classic-pat", "keys[1]", None),
    ]


def test_json_with_no_known_secret_is_one_unknown_match_for_the_whole_value() -> None:
    value = json.dumps({"host": "db.internal", "port": 5432, "nested": {"user": "app"}})
    [match] = inspect_value(Secret(value), FP)
    assert (match.kind, match.field, match.fingerprint) == (UNKNOWN_KIND, None, fp(value))


def test_json_public_ids_alone_are_not_secrets() -> None:
    value = json.dumps({"publishable_key": "pk_live_" + body(24), "account_sid": "AC" + body(32, HEX)})
    assert [m.kind for m in inspect_value(Secret(value), FP)] == [UNKNOWN_KIND]


@pytest.mark.parametrize(
    "value",
    [
        '{"api_key": ',  # truncated
        "{not json at all}",
        '{"a":' * 5000 + "1" + "}" * 5000,  # regression: RecursionError
        '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
    ids=["truncated", "not-json", "deep-objects", "deep-arrays"],
)
def test_broken_or_hostile_json_is_an_unknown_text_value(value: str) -> None:
    [match] = inspect_value(Secret(value), FP)
    assert (match.kind, match.fingerprint) == (UNKNOWN_KIND, fp(value))


def test_json_top_level_array_is_treated_as_text() -> None:
    value = json.dumps([OPENAI_PROJECT])
    assert [m.kind for m in inspect_value(Secret(value), FP)] == [UNKNOWN_KIND]


# --- .env text -------------------------------------------------------------------------------

ENV_TEXT = f"""\
# Service credentials
export OPENAI_API_KEY={OPENAI_PROJECT}
ANTHROPIC_API_KEY="{ANTHROPIC_API}"
STRIPE_KEY='{STRIPE_SECRET}'   # inline comment after quotes

GITHUB_TOKEN={GITHUB_CLASSIC} # inline comment
# DISABLED_TOKEN={"ghp_" + body(36, ALNUM, "disabled")}
AWS_ACCESS_KEY_ID={AWS_ID}
  AWS_SECRET_ACCESS_KEY = {AWS_SECRET}
DB_PASSWORD=s3cr3t-passw0rd
PORT=5432
DEBUG=true
PLACEHOLDER_API_KEY=changeme
EMPTY_TOKEN=
TEMPLATE_SECRET=${{VAULT_SECRET}}
ANGLE_TOKEN=<your-token-here>
"""


def test_env_text_flags_with_line_numbers() -> None:
    matches = list(scan_env_text(ENV_TEXT, FP))
    assert [(m.kind, m.field, m.line, m.key_id) for m in matches] == [
        ("aws-access-key", "AWS_SECRET_ACCESS_KEY", 9, AWS_ID),
        ("openai-project", "OPENAI_API_KEY", 2, None),
        ("anthropic-api", "ANTHROPIC_API_KEY", 3, None),
        ("stripe-secret", "STRIPE_KEY", 4, None),
        ("github-classic-pat", "GITHUB_TOKEN", 6, None),
        ("unknown", "DB_PASSWORD", 10, None),
    ]
    assert [m.fingerprint for m in matches] == [
        fp(AWS_SECRET), fp(OPENAI_PROJECT), fp(ANTHROPIC_API), fp(STRIPE_SECRET),
        fp(GITHUB_CLASSIC), fp("s3cr3t-passw0rd"),
    ]
    assert_hidden(matches, OPENAI_PROJECT, ANTHROPIC_API, STRIPE_SECRET, GITHUB_CLASSIC, AWS_SECRET)


def test_env_text_via_inspect_value() -> None:
    assert [(m.kind, m.line) for m in inspect_value(Secret(ENV_TEXT), FP)][:2] == [
        ("aws-access-key", 9), ("openai-project", 2),
    ]


def test_env_crlf_line_endings() -> None:
    text = ENV_TEXT.replace("\n", "\r\n")
    assert [(m.field, m.line) for m in scan_env_text(text, FP)] == [
        (m.field, m.line) for m in scan_env_text(ENV_TEXT, FP)
    ]


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_env_line_numbers_ignore_non_newline_separators(separator: str) -> None:
    """Regression: str.splitlines() counted these as line breaks and shifted line numbers."""
    text = f"# page{separator}break\nGITHUB_TOKEN={GITHUB_CLASSIC}\n"
    assert [(m.field, m.line) for m in scan_env_text(text, FP)] == [("GITHUB_TOKEN", 2)]


def test_env_old_mac_line_endings_count_as_lines() -> None:
    text = f"# a\rGITHUB_TOKEN={GITHUB_CLASSIC}\r"
    assert [m.line for m in scan_env_text(text, FP)] == [2]


def test_env_django_secret_key_is_unknown_not_aws() -> None:
    """Regression: SECRET_KEY of any shape was reported as an aws-access-key."""
    text = "SECRET_KEY=django-insecure-" + body(50, ALNUM, "dj") + "\n"
    assert [(m.provider, m.kind, m.field) for m in scan_env_text(text, FP)] == [
        ("unknown", "unknown", "SECRET_KEY")
    ]


def test_env_aws_temporary_pair() -> None:
    text = (
        f"AWS_ACCESS_KEY_ID={AWS_TEMP_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
        f"AWS_SESSION_TOKEN={AWS_SESSION_TOKEN}\n"
    )
    matches = list(scan_env_text(text, FP))
    assert [(m.kind, m.field, m.key_id, m.line) for m in matches] == [
        ("aws-temporary-key", "AWS_SECRET_ACCESS_KEY", AWS_TEMP_ID, 2),
        ("unknown", "AWS_SESSION_TOKEN", None, 3),
    ]
    assert_hidden(matches, AWS_SECRET, AWS_SESSION_TOKEN)


def test_env_publishable_key_is_not_a_secret() -> None:
    text = "STRIPE_PUBLISHABLE_KEY=pk_live_" + body(24) + "\nTWILIO_ACCOUNT_SID=AC" + body(32, HEX) + "\n"
    assert list(scan_env_text(text, FP)) == []


def test_env_known_format_is_flagged_whatever_the_name() -> None:
    assert [(m.kind, m.field) for m in scan_env_text(f"SOMETHING={GITHUB_CLASSIC}\n", FP)] == [
        ("github-classic-pat", "SOMETHING")
    ]


def test_env_last_assignment_wins() -> None:
    text = f"API_TOKEN=first-value-here\nAPI_TOKEN={GITHUB_CLASSIC}\n"
    assert [(m.kind, m.line) for m in scan_env_text(text, FP)] == [("github-classic-pat", 2)]


@pytest.mark.parametrize(
    "value",
    ["", "changeme", "change-me", "CHANGEME", "xxx", "xxxxxxxx", "***", "<api key>", "${OPENAI_KEY}",
     "your-api-key", "your_token_here", "todo", "none", "null", "example", "example-key", "dummy",
     "test", "redacted", '""', "''"],
)
def test_env_placeholders_are_not_secrets(value: str) -> None:
    assert list(scan_env_text(f"SERVICE_API_KEY={value}\n", FP)) == []


@pytest.mark.parametrize("name", ["PORT", "HOST", "LOG_LEVEL", "DEBUG", "REGION", "KEYBOARD_LAYOUT"])
def test_env_non_secret_names_with_unknown_values_are_ignored(name: str) -> None:
    assert list(scan_env_text(f"{name}=some-value-1234\n", FP)) == []


@pytest.mark.parametrize(
    "name",
    ["API_KEY", "OPENAI_APIKEY", "SERVICE_TOKEN", "DB_PASSWORD", "CLIENT_SECRET", "PRIVATE_KEY",
     "SLACK_AUTH", "GCP_CREDENTIALS", "db.password", "my-service-token"],
)
def test_env_secret_names_with_unknown_values_are_unknown(name: str) -> None:
    [match] = scan_env_text(f"{name}=v4lue-0f-s0me-sort\n", FP)
    assert (match.provider, match.field, match.line) == (UNKNOWN_PROVIDER, name, 1)
    assert match.fingerprint == fp("v4lue-0f-s0me-sort")


PARSE_CASES: list[tuple[str, tuple[str, str] | None]] = [
    ("FOO=bar", ("FOO", "bar")),
    ("export FOO=bar", ("FOO", "bar")),
    ("export   FOO=bar", ("FOO", "bar")),
    ("  FOO = bar  ", ("FOO", "bar")),
    ('FOO="bar baz"', ("FOO", "bar baz")),
    ("FOO='bar baz'", ("FOO", "bar baz")),
    ('FOO="bar" # comment', ("FOO", "bar")),
    ("FOO=bar # comment", ("FOO", "bar")),
    ("FOO=bar#not-a-comment", ("FOO", "bar#not-a-comment")),
    ("FOO=#not-a-comment", ("FOO", "#not-a-comment")),
    ('FOO="unterminated', ("FOO", "unterminated")),
    ('FOO="has # hash"', ("FOO", "has # hash")),
    ("FOO=a=b=c", ("FOO", "a=b=c")),
    ("FOO=", ("FOO", "")),
    ("foo.bar-baz=1", ("foo.bar-baz", "1")),
    ("_PRIVATE=1", ("_PRIVATE", "1")),
    ("# FOO=bar", None),
    ("   # FOO=bar", None),
    ("", None),
    ("   ", None),
    ("FOO", None),
    ("export", None),
    ("export FOO", None),
    ("1FOO=bar", None),
    ("FOO BAR=baz", None),
    ("=bar", None),
    ("$FOO=bar", None),
]


@pytest.mark.parametrize(("line", "expected"), PARSE_CASES, ids=[c[0] or "<empty>" for c in PARSE_CASES])
def test_parse_env_line(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_env_line(line) == expected


# --- fingerprints across shapes --------------------------------------------------------------


@pytest.mark.parametrize("value", [OPENAI_PROJECT, AWS_SECRET, "an-unknown-s3cret-value"])
def test_equal_values_in_different_shapes_share_a_fingerprint(value: str) -> None:
    shapes = [
        inspect_value(Secret(value), FP, "aws_secret_access_key" if value == AWS_SECRET else None),
        inspect_value(Secret(f"  {value}\n"), FP, "aws_secret_access_key" if value == AWS_SECRET else None),
        inspect_value(Secret(json.dumps({"api_key": value})), FP),
        inspect_value(Secret(json.dumps({"prod": {"aws_secret_access_key": value}})), FP),
        list(scan_env_text(f'export SERVICE_TOKEN="{value}"\n', FP)),
    ]
    fingerprints = {m.fingerprint for matches in shapes for m in matches}
    assert fingerprints == {fp(value)}
    for matches in shapes:
        assert_hidden(matches, value)


def test_different_values_and_keys_give_different_fingerprints() -> None:
    other = Fingerprinter(b"another-installation-key-0000000")
    assert fp(OPENAI_PROJECT) != fp(ANTHROPIC_API)
    assert other.fingerprint(Secret(OPENAI_PROJECT)) != fp(OPENAI_PROJECT)
    assert FINGERPRINT.fullmatch(fp(OPENAI_PROJECT))


def test_secret_match_repr_never_contains_the_value() -> None:
    values = [OPENAI_PROJECT, ANTHROPIC_API, STRIPE_SECRET, GITHUB_CLASSIC, AWS_SECRET, "s3cr3t-passw0rd"]
    matches = [
        *scan_env_text(ENV_TEXT, FP),
        *inspect_value(Secret(json.dumps({"a": OPENAI_PROJECT, "b": {"c": [ANTHROPIC_API]}})), FP),
        *inspect_value(Secret("s3cr3t-passw0rd"), FP),
    ]
    assert len(matches) == 9
    for match in matches:
        text = f"{match!r} {match} {dataclasses.asdict(match)}"
        for value in values:
            assert value not in text


@pytest.mark.parametrize("name", ["clientSecret", "accessToken", "dbPassword", "SessionToken", "privateKey"])
def test_json_camel_case_secret_names_are_reported(name: str) -> None:
    """Regression: camelCase credential fields next to a known key went unreported."""
    value = json.dumps({name: "v4lue-0f-s0me-sort", "github": GITHUB_CLASSIC, "keyboardLayout": "dvorak-1"})
    assert _summary(inspect_value(Secret(value), FP)) == [
        ("unknown", "unknown", name, None),
        ("github", "github-classic-pat", "github", None),
    ]


def test_prefixed_aws_pairs_join_by_prefix() -> None:
    import random as _random

    from keyguard.classify import scan_env_text
    from keyguard.fakes import fake_aws_pair
    from keyguard.fingerprint import Fingerprinter

    rng = _random.Random(99)
    prod_id, prod_secret = fake_aws_pair(rng)
    dev_id, dev_secret = fake_aws_pair(rng)
    text = (f"DEV_AWS_ACCESS_KEY_ID={dev_id}\nPROD_AWS_SECRET_ACCESS_KEY={prod_secret}\n"
            f"PROD_AWS_ACCESS_KEY_ID={prod_id}\nDEV_AWS_SECRET_ACCESS_KEY={dev_secret}\n")
    matches = {m.field: m for m in scan_env_text(text, Fingerprinter(b"k" * 32))}
    assert set(matches) == {"PROD_AWS_SECRET_ACCESS_KEY", "DEV_AWS_SECRET_ACCESS_KEY"}
    assert matches["PROD_AWS_SECRET_ACCESS_KEY"].key_id == prod_id
    assert matches["DEV_AWS_SECRET_ACCESS_KEY"].key_id == dev_id
    assert {m.kind for m in matches.values()} == {"aws-access-key"}


def test_links_join_a_stored_value_with_provider_handles_without_keeping_them() -> None:
    import hashlib
    import random as _random

    from keyguard.classify import provider_handles
    from keyguard.fakes import fake_key
    from keyguard.fingerprint import Fingerprinter
    from keyguard.secret import Secret

    fp = Fingerprinter(b"k" * 32)
    value = fake_key("anthropic-api", _random.Random(1))
    (match,) = inspect_value(Secret(value), fp)
    hint = f"{value[:16]}...{value[-4:]}"
    assert fp.fingerprint(Secret(hint)) in match.links
    assert fp.fingerprint(Secret(hashlib.sha256(value.encode()).hexdigest())) in match.links
    assert hint not in repr(match)
    assert provider_handles("AKIAIOSFODNN7EXAMPLE") == []
    assert links_of("ghp_" + "a" * 36, fp) == ()
