"""Fuzz keyguard.toml and --policy files: documents built from the config schema itself.

The generator walks the :class:`keyguard.config.Config` dataclasses, so a setting added to
the schema is fuzzed without touching this file. Each document is valid TOML with valid
values, plus at most one planted fault: an unknown key, or a value of the wrong type at
a known dotted key. Properties:

* a document without a fault loads and validates;
* a fault is exactly one :class:`ConfigError` (exit 2), one line, starting with the file
  name and naming the dotted key;
* the owner-checked tables (``[policy.rules]``, waivers, ``[usage.detectors]``, scopes,
  suppressions) filled with junk raise only ConfigError, never another exception;
* through the CLI: exit 2, one stderr line, no traceback, and a key planted as a value
  never reaches the terminal.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from keyguard.config import Config, load_config, load_policy_file
from keyguard.engine import catalogue
from keyguard.errors import ConfigError
from keyguard.fakes import fake_key
from keyguard.usage.detectors import DETECTORS
from keyguard.validate import validate_config
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli  # the fixture, for the CLI test
from tests.fuzz.profiles import CLI_DEADLINE, budget

# --- a tiny TOML writer (inline tables are valid anywhere) --------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_doc(doc: Mapping[str, object]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


# --- documents from the schema ------------------------------------------------------------

_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_/.", min_size=1, max_size=12)
#: Values the schema's types allow but a later check refuses; kept valid here.
_SPECIAL: dict[str, st.SearchStrategy[object]] = {
    "time_format": st.sampled_from(["auto", "iso", "unix", "unix-ms"]),
    "token": _WORD.map(lambda w: f"env:{w}"),
    "secret_id": _WORD.map(lambda w: f"keyring:{w}"),
    "fail_on": st.sampled_from(["info", "low", "medium", "high", "critical"]),
}
_RAW_TABLES = {"rules", "waivers", "detectors", "scopes", "suppressions"}


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@functools.cache
def valid_value(tp: Any, name: str, depth: int = 0) -> st.SearchStrategy[object]:
    """A value the loader accepts for a field of type ``tp``."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([valid_value(a, name, depth) for a in get_args(tp)
                          if a is not type(None)])
    if origin is tuple:
        return st.lists(valid_value(get_args(tp)[0], name, depth + 1), max_size=3)
    if origin is dict and get_args(tp)[1] is Any:
        return st.just({})
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return st.dictionaries(_WORD, st.text("abcdefgh", min_size=1, max_size=8), max_size=3)
    if _is_dataclass_type(tp):
        return table(tp, depth + 1)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(1, 10**6)
    if tp is float:
        return st.floats(0, 1e6)
    if tp is str:
        return _WORD
    raise AssertionError(f"unhandled schema type {tp!r}")


@functools.cache
def wrong_value(tp: Any) -> st.SearchStrategy[object]:
    """A value of a type the field does not take."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if bool in args and str in args:
            return st.sampled_from([[1], {"a": 1}, 3])
        return st.one_of([wrong_value(a) for a in args]).filter(
            lambda v: not any(_accepts(a, v) for a in args))
    if origin is tuple:
        return st.sampled_from(["one", 7, {"a": "b"}, [1, 2], [True]])
    if origin is dict or _is_dataclass_type(tp):
        return st.sampled_from(["a table?", 7, [1], True])
    if origin is not None and issubclass(origin, Mapping):
        return st.sampled_from(["x", 1, {"a": 1}, {"b": [1]}])
    if tp is bool:
        return st.sampled_from(["yes", 1, 0.5, []])
    if tp is int:
        return st.sampled_from(["10", 1.5, True, -5, [], {"n": 1}, math.inf])
    if tp is float:
        return st.sampled_from(["1.0", False, -2.5, [], -math.inf, math.nan])
    if tp is str:
        return st.sampled_from([1, 2.5, False, ["a"], {"s": "t"}])
    raise AssertionError(f"unhandled schema type {tp!r}")


def _accepts(tp: Any, value: object) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def _fields(cls: type) -> list[tuple[str, str, Any]]:
    """(toml key, attribute, type) of every setting of ``cls``."""
    hints = typing.get_type_hints(cls)
    return [(f.name.replace("_", "-"), f.name, hints[f.name])
            for f in dataclasses.fields(cls) if not (cls is Config and f.name == "path")]


@functools.cache
def table(cls: type, depth: int = 0) -> st.SearchStrategy[object]:
    """A valid TOML table for dataclass ``cls`` (a random subset of its settings)."""
    fields = [f for f in _fields(cls) if f[1] not in _RAW_TABLES]
    required = [f for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    need = {f.name.replace("_", "-") for f in required}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, attr, tp in fields:
            if key in need or (depth < 3 and draw(st.integers(0, 3)) == 0):
                out[key] = draw(valid_value(tp, attr, depth))
        return out

    return build()


def _paths(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """Every dotted setting of the schema with its type (nested tables included)."""
    out: list[tuple[str, Any]] = []
    for key, attr, tp in _fields(cls):
        if attr in _RAW_TABLES:
            continue
        dotted = f"{prefix}{key}"
        out.append((dotted, tp))
        if _is_dataclass_type(tp):
            out.extend(_paths(tp, dotted + "."))
    return out


PATHS = _paths(Config)
TABLES = ["", *(p for p, tp in PATHS if _is_dataclass_type(tp))]


def _place(doc: dict[str, object], dotted: str, value: object) -> None:
    """Set ``a.b.c`` in ``doc``, creating (and replacing non-table) parents on the way."""
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


_counter = iter(range(10**9))


def _write(tmp: Path, text: str) -> Path:
    path = tmp / f"keyguard-{next(_counter)}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _load(path: Path) -> Config:
    config = load_config(path)
    validate_config(config)
    return config


def _one_line_naming(exc: BaseException, path: Path, dotted: str | None) -> None:
    text = str(exc)
    assert "\n" not in text, text
    assert text.startswith(f"{path}: "), text
    if dotted is not None:
        assert dotted in text, (dotted, text)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


@given(doc=table(Config))
@budget(3)
def test_documents_from_the_schema_load(tmp: Path, doc: dict[str, object]) -> None:
    path = _write(tmp, toml_doc(doc))
    config = _load(path)
    assert config.path == path


@given(doc=table(Config), where=st.sampled_from(TABLES), key=_WORD.filter(lambda w: "." not in w))
@budget(3)
def test_an_unknown_key_is_one_config_error_naming_it(tmp: Path, doc: dict[str, object],
                                                      where: str, key: str) -> None:
    dotted = f"{where}.{key}" if where else key
    known = {p for p, _ in PATHS} | {f"{where}.{r}".lstrip(".") for r in
                                     ("policy", "usage", "rules", "waivers", "detectors",
                                      "scopes", "suppressions")}
    if dotted in known or dotted.replace("_", "-") in known or key.replace("_", "-") in {
            p.rsplit(".", 1)[-1] for p, _ in PATHS if p.startswith(where)}:
        return  # not unknown after all
    _place(doc, dotted, 1)
    path = _write(tmp, toml_doc(doc))
    with pytest.raises(ConfigError) as caught:
        _load(path)
    _one_line_naming(caught.value, path, dotted)


@given(doc=table(Config), data=st.data())
@budget(4)
def test_a_wrong_type_is_one_config_error_naming_the_key(tmp: Path, doc: dict[str, object],
                                                         data: st.DataObject) -> None:
    dotted, tp = data.draw(st.sampled_from(PATHS))
    _place(doc, dotted, data.draw(wrong_value(tp)))
    path = _write(tmp, toml_doc(doc))
    with pytest.raises(ConfigError) as caught:
        _load(path)
    _one_line_naming(caught.value, path, dotted)


# --- owner-checked tables: rules, waivers, detectors, scopes, suppressions --------------

_RULES = sorted(catalogue())
_junk_scalar = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1),
                         st.floats(allow_nan=True), st.text(max_size=20),
                         st.dates().map(lambda d: d.isoformat()))
_junk = st.recursive(_junk_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_WORD, inner, max_size=3), max_leaves=8)


def _settings_keys(rule: str) -> list[str]:
    _cls, meta = catalogue()[rule]
    return ["enabled", "severity", "match", "overrides",
            *(k.replace("_", "-") for k in meta.settings)]


@st.composite
def policy_tables(draw: st.DrawFn) -> dict[str, object]:
    rules: dict[str, object] = {}
    for rule in draw(st.lists(st.sampled_from(_RULES) | _WORD, max_size=3, unique=True)):
        keys = _settings_keys(rule) if rule in _RULES else ["enabled"]
        rules[rule] = draw(st.dictionaries(st.sampled_from(keys) | _WORD, _junk, max_size=4)
                           | _junk)
    waiver_keys = st.sampled_from(["rule", "finding", "match", "owner", "reason", "expires"])
    waivers = draw(st.lists(st.dictionaries(waiver_keys | _WORD, _junk, max_size=6), max_size=2))
    out: dict[str, object] = {"rules": rules, "waivers": waivers}
    if draw(st.booleans()):
        out["fail-on"] = draw(_junk)
    return out


@st.composite
def usage_tables(draw: st.DrawFn) -> dict[str, object]:
    names = [*DETECTORS.names(), "window-days", "baseline-days"]
    detectors = draw(st.dictionaries(st.sampled_from(names) | _WORD, _junk, max_size=3))
    sup_keys = st.sampled_from(["type", "key", "alias", "tag", "owner", "reason", "expires"])
    suppressions = draw(st.lists(st.dictionaries(sup_keys | _WORD, _junk, max_size=7),
                                 max_size=2))
    scopes = draw(st.lists(st.dictionaries(_WORD, _junk, max_size=4), max_size=2))
    return {"detectors": detectors, "suppressions": suppressions, "scopes": scopes}


# NOTE: these budgets are small because every validation re-reads the rule catalogue
# (~50 ms: 22 policy .toml files); the cost is keyguard's, not the generator's.
@given(policy=policy_tables(), usage=usage_tables())
@budget(1)
def test_owner_checked_tables_raise_only_config_errors(tmp: Path, policy: dict[str, object],
                                                       usage: dict[str, object]) -> None:
    path = _write(tmp, toml_doc({"policy": policy, "usage": usage}))
    try:
        _load(path)
    except ConfigError as exc:
        _one_line_naming(exc, path, None)


@given(policy=policy_tables(), nested=st.booleans())
@budget(0.5)
def test_policy_files_raise_only_config_errors(tmp: Path, policy: dict[str, object],
                                               nested: bool) -> None:
    path = _write(tmp, toml_doc({"policy": policy} if nested else policy))
    try:
        load_policy_file(path)
        validate_config(Config(path=path, policy=load_policy_file(path)))
    except ConfigError as exc:
        _one_line_naming(exc, path, None)


@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
@budget(2)
def test_arbitrary_bytes_are_a_config_error(tmp: Path, data: bytes) -> None:
    path = tmp / f"bytes-{next(_counter)}.toml"
    path.write_bytes(data)
    try:
        _load(path)
    except ConfigError as exc:
        _one_line_naming(exc, path, None)


# --- through the CLI: exit 2, one line, never the planted key --------------------------

_SECRET_KINDS = ("anthropic-api", "openai-project", "github-fine-grained-pat", "stripe-secret",
                 "slack-bot")


_ACCOUNT = {"owner": "ops", "reason": "fuzz", "expires": "2999-01-01"}
#: Where a pasted key lands: (dotted key, how the value is wrapped); a few need a table
#: around them so the owner's check runs (a waiver, a suppression, a rule's settings).
_SLOTS: tuple[tuple[str, str], ...] = (
    ("usage.max-record-bytes", "value"), ("usage.geo", "value"),
    ("sources.vault.token", "value"), ("aws.regions", "value"), ("state", "value"),
    ("usage.generic.time-format", "value"), ("labels.environment-patterns.prod", "regex"),
    ("sources.anthropic", "value"), ("usage.{secret}", "value"),
    ("policy.rules.expiry-soon.expiring-days", "value"),
    ("policy.rules.expiry-soon.enabled", "value"), ("policy.rules.expiry-soon.severity", "value"),
    ("policy.rules.{secret}", "table"), ("policy.fail-on", "with-rule"),
    ("usage.detectors.velocity.enabled", "value"), ("usage.detectors.{secret}", "table"),
    ("policy.waivers", "waiver"), ("usage.suppressions", "suppression"),
)


@st.composite
def planted(draw: st.DrawFn) -> tuple[dict[str, object], str]:
    secret = fake_key(draw(st.sampled_from(_SECRET_KINDS)), random.Random(draw(st.integers())))
    dotted, how = draw(st.sampled_from(_SLOTS))
    dotted = dotted.replace("{secret}", secret)
    value: object = draw(st.sampled_from([secret, [secret], {"k": secret}, f"x:{secret}"]))
    doc: dict[str, object] = {}
    if how == "regex":
        value = f"({secret}"  # an invalid regular expression quoting the key
    elif how == "table":
        value = {}
    elif how == "with-rule":
        _place(doc, "policy.rules.expiry-soon", {"enabled": True})
    elif how == "waiver":
        value = [{"rule": secret, **_ACCOUNT}]
    elif how == "suppression":
        value = [{"type": secret, "key": "k-*", **_ACCOUNT}]
    _place(doc, dotted, value)
    return doc, secret


@given(case=planted())
@budget(0.3, suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=CLI_DEADLINE)
def test_cli_config_errors_never_show_a_planted_key(cli: Cli, case: tuple[dict[str, object],
                                                                          str]) -> None:
    doc, secret = case
    path = _write(cli.workdir, toml_doc(doc))
    result = cli(["--config", str(path), "rules"])
    if result.exit_code == 0:
        return  # a string setting that takes anything (state = "<the key>" is a path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"keyguard: error: {path}: "), lines[0]
    assert "Traceback" not in result.output
    for start in range(0, len(secret) - 11, 6):
        assert secret[start:start + 12] not in result.output, result.output
