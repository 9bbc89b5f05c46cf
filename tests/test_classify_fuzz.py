"""Property tests for the classifier: no crash, no leak, no catastrophic backtracking.

Budgets: each test asks for ``weight`` x the active profile's ``max_examples``. The default
profile (``classify-fuzz``, 100) gives about 4,000 cases for the file; run with
``HYPOTHESIS_PROFILE=nightly`` to select ``classify-fuzz-nightly`` (10x). The profiles are
registered here rather than in conftest.py, guarded so a second registration is a no-op,
and applied per test, so loading this module never changes other files' settings.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from keyguard.classify import (
    FORMATS,
    KeyFormat,
    SecretMatch,
    classify_token,
    inspect_value,
    parse_env_line,
    scan_env_text,
)
from keyguard.fakes import fake_aws_pair, fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import Fingerprint
from keyguard.secret import Secret


def _profile(name: str, parent: settings | None = None, max_examples: int = 100) -> settings:
    try:
        return settings.get_profile(name)
    except InvalidArgument:
        settings.register_profile(
            name,
            parent=parent,
            max_examples=max_examples,
            deadline=timedelta(milliseconds=1500),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        return settings.get_profile(name)


_DEFAULT = _profile("classify-fuzz", max_examples=100)
_NIGHTLY = _profile("classify-fuzz-nightly", parent=_DEFAULT, max_examples=1000)
PROFILE = (
    _NIGHTLY
    if os.environ.get("HYPOTHESIS_PROFILE") in {"nightly", "classify-fuzz-nightly"}
    else _DEFAULT
)


def budget(weight: int) -> settings:
    """Settings for one test: ``weight`` x the active profile's example count."""
    return settings(PROFILE, max_examples=weight * PROFILE.max_examples)


FP = Fingerprinter(b"keyguard-fuzz-fingerprint-key-01")
FINGERPRINT = re.compile(r"kg1:[0-9a-f]{32}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
PROVIDERS = {f.provider for f in FORMATS} | {"unknown"}
KINDS = {f.kind for f in FORMATS} | {"unknown"}
AWS_ID_KINDS = {"aws-access-key", "aws-temporary-key"}
#: Wall-clock bound for one call on an adversarial input (catastrophic backtracking on
#: 8k characters takes seconds; a linear scan takes a few milliseconds).
SLOW = 0.5


def name_for(fmt: KeyFormat) -> str | None:
    if fmt.name_hint is None:
        return None
    for name in (f"{fmt.provider.upper()}_API_KEY", "AWS_SECRET_ACCESS_KEY", fmt.provider):
        if re.search(fmt.name_hint, name, re.IGNORECASE):
            return name
    raise AssertionError(fmt.kind)


def reported_kind(fmt: KeyFormat) -> str:
    """The kind a field holding this format is reported as (AWS secrets as the pair)."""
    return "aws-access-key" if fmt.kind == "aws-secret-key" else fmt.kind


def check_match(match: SecretMatch, secrets: Collection[str], names: Collection[str] | None) -> None:
    """A match holds only vocabulary, a fingerprint, a known name and an AWS id, never a value.

    Every 12-character window of the repr (minus ``field`` and ``key_id``, validated on
    their own) must be absent from every secret value, unless it is fixed structure.
    """
    assert match.provider in PROVIDERS
    assert match.kind in KINDS
    assert FINGERPRINT.fullmatch(match.fingerprint)
    assert match.line is None or match.line >= 1
    if match.key_id is not None:
        fmt = classify_token(match.key_id)
        assert fmt is not None
        assert fmt.kind in AWS_ID_KINDS
    if names is not None and match.field is not None:
        assert match.field in names
    redacted = replace(match, field=None, key_id=None)
    text = repr(redacted)
    structure = repr(replace(redacted, fingerprint=Fingerprint("")))
    for i in range(len(text) - 11):
        window = text[i : i + 12]
        if window in structure:
            continue
        for secret in secrets:
            assert window not in secret, f"{window!r} of a secret value appears in {text}"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- strategies ------------------------------------------------------------------------------

SECRET_ROWS = [f for f in FORMATS if f.secret]
_PIECES = [
    "{", "}", "[", "]", '"', "'", ":", ",", "=", "\n", "\r\n", "\r", "#", " #", " ", "\t", "\\",
    "export ", "${", "<", ">", "-", "_", ".", "/", "+", "AKIA", "ASIA", "sk-", "sk-ant-api03-",
    "sk-proj-", "T3BlbkFJ", "ghp_", "github_pat_", "xoxb-", "xapp-1-", "glpat-", "AIza", "hf_",
    "SG.", "pypi-AgEIcHlwaS5vcmc", "_API_KEY", "API_KEY=", "TOKEN=", "SECRET_KEY=",
    "aws_access_key_id", "aws_secret_access_key", '"api_key": ', "changeme", "1234567890",
    "abcdefghij", "ABCDEFGHIJ", "\u2028", "\x0c", "\x85", "\u00e9", "\u5bc6",
]
#: Text assembled from pieces the parsers care about, plus random filler.
grammar_text = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=60
).map("".join)
any_text = st.one_of(st.text(max_size=400), grammar_text)
decoded_bytes = st.tuples(
    st.binary(max_size=400), st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"])
).map(lambda b: b[0].decode(b[1], errors="replace"))
field_names = st.one_of(
    st.none(),
    st.sampled_from(["MISTRAL_API_KEY", "COHERE_API_KEY", "DEEPSEEK_API_KEY", "aws_secret_access_key",
                     "API_KEY", "token", "SECRET_KEY", "x"]),
    st.text(max_size=20),
)
fake_tokens = st.builds(
    lambda fmt, seed: (fmt, fake_key(fmt.kind, random.Random(seed))),
    st.sampled_from(SECRET_ROWS),
    st.integers(0, 2**32),
)


# --- arbitrary input: never raises, never leaks ----------------------------------------------


@budget(6)
@given(text=any_text, name=field_names)
def test_inspect_value_on_arbitrary_text(text: str, name: str | None) -> None:
    matches = inspect_value(Secret(text), FP, name)
    assert (len(matches) >= 1) == bool(text.strip())
    for match in matches:
        check_match(match, [text], None)


@budget(3)
@given(text=decoded_bytes)
def test_inspect_value_on_decoded_bytes(text: str) -> None:
    for match in inspect_value(Secret(text), FP):
        check_match(match, [text], None)


@budget(4)
@given(text=any_text)
def test_scan_env_text_on_arbitrary_text(text: str) -> None:
    lines = re.split(r"\r\n|\r|\n", text)
    for match in scan_env_text(text, FP):
        check_match(match, [text], None)
        # The reported line really assigns the reported variable.
        assert match.line is not None
        assert match.line <= len(lines)
        parsed = parse_env_line(lines[match.line - 1])
        assert parsed is not None
        assert parsed[0] == match.field


@budget(6)
@given(line=st.one_of(any_text, decoded_bytes))
def test_parse_env_line_on_arbitrary_text(line: str) -> None:
    parsed = parse_env_line(line)
    if parsed is None:
        return
    name, value = parsed
    assert ENV_NAME.fullmatch(name)
    assert "=" in line
    assert name in line.partition("=")[0]
    assert value in line


@budget(3)
@given(token=st.one_of(any_text, decoded_bytes), name=field_names)
def test_classify_token_result_really_matches(token: str, name: str | None) -> None:
    fmt = classify_token(token, name)
    if fmt is None:
        return
    assert re.fullmatch(fmt.pattern, token.strip(), re.ASCII)
    if fmt.name_hint is not None:
        assert name is not None
        assert re.search(fmt.name_hint, name, re.IGNORECASE)


# --- structured input: names and values kept apart -------------------------------------------

env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,24}", fullmatch=True)
env_values = st.one_of(
    st.text(st.characters(blacklist_characters="\r\n\"'#"), max_size=80),
    fake_tokens.map(lambda t: t[1]),
)


@budget(4)
@given(
    pairs=st.lists(st.tuples(env_names, env_values), max_size=12, unique_by=lambda p: p[0]),
    export=st.booleans(),
    quote=st.sampled_from(["", '"', "'"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_env_matches_name_their_variable_and_line(
    pairs: list[tuple[str, str]], export: bool, quote: str, newline: str
) -> None:
    prefix = "export " if export else ""
    text = newline.join(f"{prefix}{n}={quote}{v}{quote}" for n, v in pairs)
    values = [v for _n, v in pairs if len(v.strip()) >= 12]
    line_of = {n: i + 1 for i, (n, _v) in enumerate(pairs)}
    for match in scan_env_text(text, FP):
        check_match(match, values, set(line_of))
        assert match.field is not None
        assert match.line == line_of[match.field]


json_keys = st.text(st.characters(blacklist_characters=".[]"), min_size=1, max_size=12)
json_docs: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.text(max_size=60), st.integers(), st.booleans(), st.none(), fake_tokens.map(lambda t: t[1])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(json_keys, inner, max_size=4)),
    max_leaves=20,
)


def _paths(obj: Any, path: str = "") -> dict[str, str]:
    """String leaves by field path: ``a.b`` for objects, ``a[0]`` for arrays."""
    out: dict[str, str] = {}
    if isinstance(obj, str):
        out[path] = obj
    elif isinstance(obj, dict):
        for key, val in obj.items():
            out.update(_paths(val, f"{path}.{key}" if path else key))
    elif isinstance(obj, list):
        for i, val in enumerate(obj):
            out.update(_paths(val, f"{path}[{i}]"))
    return out


@budget(4)
@given(doc=st.dictionaries(json_keys, json_docs, max_size=6))
def test_json_matches_name_their_field_and_never_leak(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    leaves = _paths(doc)
    values = [v for v in leaves.values() if len(v.strip()) >= 12]
    matches = inspect_value(Secret(text), FP)
    assert matches
    for match in matches:
        if match.field is None:  # nothing recognised: one unknown match for the whole value
            assert matches == [match]
            assert match.fingerprint == FP.fingerprint(Secret(text))
            continue
        check_match(match, values, set(leaves))


# --- valid keys embedded in random shapes are found -------------------------------------------

_NOISE_NAMES = ["region", "host", "port", "description", "owner", "enabled", "count"]
_WRAPPER_KEYS = ["data", "prod", "config", "items", "service", "v1"]
_LEAF_NAMES = ["api_key", "token", "value", "key", "credential", "access_key", "secret_key", "x", "apiKey"]
noise_values = st.one_of(
    st.integers(), st.booleans(), st.none(), st.text("abcdefghijklmnopqrstuvwxyz ", max_size=10)
)
noise = st.dictionaries(st.sampled_from(_NOISE_NAMES), noise_values, max_size=3)


@st.composite
def embedded_in_json(draw: st.DrawFn) -> tuple[KeyFormat, str, str, str]:
    """(format, token, JSON text, expected field path) with the token somewhere inside."""
    fmt, token = draw(fake_tokens)
    name = name_for(fmt) or draw(st.sampled_from(_LEAF_NAMES))
    value: Any = {**draw(noise), name: token}
    path = name
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(_WRAPPER_KEYS))
        if draw(st.booleans()):
            value, path = {**draw(noise), key: value}, f"{key}.{path}"
        else:
            before = draw(st.lists(noise_values, max_size=2))
            after = draw(st.lists(noise_values, max_size=2))
            value = {**draw(noise), key: [*before, value, *after]}
            path = f"{key}[{len(before)}].{path}"
    indent = draw(st.sampled_from([None, 2]))
    return fmt, token, json.dumps(value, indent=indent), path


@budget(3)
@given(case=embedded_in_json())
def test_key_embedded_in_json_is_found(case: tuple[KeyFormat, str, str, str]) -> None:
    fmt, token, text, path = case
    matches = inspect_value(Secret(text), FP)
    assert [(m.kind, m.field, m.fingerprint) for m in matches] == [
        (reported_kind(fmt), path, FP.fingerprint(Secret(token)))
    ]
    for match in matches:
        check_match(match, [token], {path})


_ENV_STYLES = [
    "{n}={t}", "export {n}={t}", '{n}="{t}"', "{n}='{t}'", "{n}={t} # rotated monthly",
    "  {n} = {t}  ", 'export {n}="{t}"  # note', "\t{n}={t}",
]
_NOISE_LINES = ["", "# comment", "PORT=8080", "export DEBUG=true", "HOST='db.internal'", "   "]


@st.composite
def embedded_in_env(draw: st.DrawFn) -> tuple[KeyFormat, str, str, str, int]:
    """(format, token, .env text, variable name, 1-based line) with one key line."""
    fmt, token = draw(fake_tokens)
    name = name_for(fmt) or draw(st.sampled_from(["API_KEY", "SERVICE_TOKEN", "MY_KEY", "X", "K.V-1"]))
    comment = st.text(st.characters(blacklist_characters="\r\n"), max_size=30).map(lambda c: "# " + c)
    before = draw(st.lists(st.one_of(st.sampled_from(_NOISE_LINES), comment), max_size=5))
    after = draw(st.lists(st.one_of(st.sampled_from(_NOISE_LINES), comment), max_size=5))
    line = draw(st.sampled_from(_ENV_STYLES)).format(n=name, t=token)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join([*before, line, *after]) + draw(st.sampled_from(["", newline]))
    return fmt, token, text, name, len(before) + 1


@budget(3)
@given(case=embedded_in_env())
def test_key_embedded_in_env_is_found(case: tuple[KeyFormat, str, str, str, int]) -> None:
    fmt, token, text, name, line = case
    matches = list(scan_env_text(text, FP))
    assert [(m.kind, m.field, m.line, m.fingerprint) for m in matches] == [
        (reported_kind(fmt), name, line, FP.fingerprint(Secret(token)))
    ]
    for match in matches:
        check_match(match, [token], {name})


@budget(2)
@given(case=fake_tokens)
def test_fake_keys_classify_back(case: tuple[KeyFormat, str]) -> None:
    fmt, token = case
    assert classify_token(token, name_for(fmt)) is fmt


@budget(1)
@given(seed=st.integers(0, 2**32), session=st.booleans(), nest=st.sampled_from(["", "Credentials"]))
def test_aws_pair_in_json_is_one_match(seed: int, session: bool, nest: str) -> None:
    rng = random.Random(seed)
    key_id, secret = fake_aws_pair(rng)
    if session:
        key_id = "ASIA" + key_id[4:]
    pair = {"AccessKeyId": key_id, "SecretAccessKey": secret}
    text = json.dumps({nest: pair} if nest else pair)
    [match] = inspect_value(Secret(text), FP)
    assert match.kind == ("aws-temporary-key" if session else "aws-access-key")
    assert match.key_id == key_id
    assert match.fingerprint == FP.fingerprint(Secret(secret))
    check_match(match, [secret], None)


# --- adversarial long inputs: bounded time ----------------------------------------------------


def _literal_prefix(fmt: KeyFormat) -> str:
    first = fmt.shape[0]
    return first if isinstance(first, str) else ""


def _alphabets(fmt: KeyFormat) -> list[str]:
    return [p[0] for p in fmt.shape if not isinstance(p, str)]


def _run_all(text: str, name: str | None) -> dict[str, float]:
    return {
        "classify_token": timed(lambda: classify_token(text, name)),
        "inspect_value": timed(lambda: inspect_value(Secret(text), FP, name)),
        "scan_env_text": timed(lambda: list(scan_env_text(f"{name or 'API_KEY'}={text}\n", FP))),
        "parse_env_line": timed(lambda: parse_env_line(f"export {name or 'X'}={text}")),
    }


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_prefix_followed_by_8k_of_its_alphabet_is_fast(fmt: KeyFormat) -> None:
    prefix = _literal_prefix(fmt)
    name = name_for(fmt)
    for alphabet in [*_alphabets(fmt), "-", "_", ".", "1", "A1-", "a.", "1-"]:
        filler = (alphabet * (8000 // len(alphabet) + 1))[:8000]
        for tail in ("", "!", "AA", "\n"):
            text = prefix + filler + tail
            slow = {k: t for k, t in _run_all(text, name).items() if t > SLOW}
            assert slow == {}, f"{fmt.kind}: {prefix!r} + {alphabet!r}*8000 + {tail!r}"
            found = classify_token(text, name)
            assert found is None or re.fullmatch(found.pattern, text.strip(), re.ASCII)


HOSTILE = [
    "{" * 8000, "[" * 8000, '{"a":' * 1600, '{"a": [' * 1100, '"' * 8000, "=" * 8000,
    "\n" * 8000, "\r" * 8000, "\r\n" * 4000, "#" * 8000, "export " * 1150, "<" * 8000,
    "${" * 4000, "x=" + "<" * 8000, "_" * 8000 + "api_key", "-" * 8000 + "token", "A" * 8000,
    "a1" * 4000, "1-" * 4000, "xoxb-" + "1-" * 4000, "xoxb-" + "1" * 8000 + "-",
    "xoxp-" + "1234567890-" * 720, "xapp-1-" + "A-1-" * 2000, "xoxs-" + "1-" * 4000,
    "glpat-" + "a" * 8000 + ".", "https://hooks.slack.com/services/T" + "A/B" * 2600,
    "SG." + "a." * 4000, "sk-" + "a-" * 4000, "\u2028" * 8000, "API_KEY=" + "x" * 8000,
    "A=" * 4000, "API_TOKEN=v\n" * 800, "your-" * 1600, "example" * 1100,
    json.dumps({f"k{i}": {"aws_access_key_id": "AKIA" + "A" * 16, "secret_key": "B" * 40} for i in range(300)}),
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: f"{t[:12]!r}x{len(t)}")
def test_hostile_input_is_fast(text: str) -> None:
    for name in (None, "API_KEY", "MISTRAL_API_KEY"):
        slow = {k: t for k, t in _run_all(text, name).items() if t > SLOW}
        assert slow == {}
    assert timed(lambda: list(scan_env_text(text, FP))) < SLOW


_PREFIXES = sorted({_literal_prefix(f) for f in FORMATS} - {""})


@budget(1)
@given(
    prefix=st.sampled_from(_PREFIXES),
    chunk=st.text(
        st.sampled_from("abcAB019-_./+=:\n\"'{}[]# T3BlbkFJ"), min_size=1, max_size=8
    ),
    size=st.integers(2000, 8000),
    name=st.sampled_from([None, "API_KEY", "MISTRAL_API_KEY", "aws_secret_access_key"]),
)
def test_generated_long_inputs_are_fast(prefix: str, chunk: str, size: int, name: str | None) -> None:
    text = prefix + (chunk * (size // len(chunk) + 1))[:size]
    slow = {k: t for k, t in _run_all(text, name).items() if t > SLOW}
    assert slow == {}
