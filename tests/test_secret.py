"""Secret keeps its value out of every printable or serialisable form."""

from __future__ import annotations

import copy
import io
import logging
import pickle
import traceback
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.errors import KeyguardError
from keyguard.secret import Secret

VALUE = "sk-live-canary-0123456789abcdef"  # pragma: allowlist secret
REDACTED = "Secret(***)"

#: Every way a value commonly reaches text by accident.
RENDERINGS: list[tuple[str, Callable[[Secret], str]]] = [
    ("repr", repr),
    ("str", str),
    ("f-string", lambda s: f"{s}"),
    ("f-string !r", lambda s: f"{s!r}"),
    ("f-string !s", lambda s: f"{s!s}"),
    ("f-string spec", lambda s: f"{s:>40}"),
    ("format()", lambda s: format(s, "")),
    ("str.format", lambda s: "{}".format(s)),  # noqa: UP032 - the str.format path is the point
    ("percent %s", lambda s: "%s" % s),  # noqa: UP031
    ("percent %r", lambda s: "%r" % s),  # noqa: UP031
    ("in a list", lambda s: str([s])),
    ("in a dict", lambda s: repr({"key": s})),
    ("in a tuple", lambda s: f"{(s, 1)}"),
]


@pytest.mark.parametrize(("how", "render"), RENDERINGS, ids=[r[0] for r in RENDERINGS])
def test_rendering_hides_the_value(how: str, render: Callable[[Secret], str]) -> None:
    text = render(Secret(VALUE))
    assert VALUE not in text
    assert REDACTED in text


def test_reveal_returns_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


def test_bool_and_len_follow_the_value() -> None:
    assert not Secret("")
    assert Secret("x")
    assert len(Secret(VALUE)) == len(VALUE)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_refuses_and_the_error_hides_the_value(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(Secret(VALUE), protocol=protocol)
    assert VALUE not in str(info.value)


def test_pickle_refuses_inside_a_container() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps({"nested": [Secret(VALUE)]})


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copy_refuses_rather_than_cloning_through_reduce(copier: Callable[[Secret], Secret]) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        copier(Secret(VALUE))


def test_no_instance_dict_to_dump() -> None:
    secret = Secret(VALUE)
    assert not hasattr(secret, "__dict__")
    with pytest.raises(TypeError):
        vars(secret)


def test_exception_message_built_with_fstring_hides_the_value() -> None:
    secret = Secret(VALUE)
    with pytest.raises(KeyguardError) as info:
        raise KeyguardError(f"cannot use {secret}", f"rotate {secret!r}")
    rendered = "".join(traceback.format_exception(info.value))
    assert VALUE not in str(info.value)
    assert VALUE not in repr(info.value)
    assert VALUE not in rendered
    assert str(info.value) == f"cannot use {REDACTED}; rotate {REDACTED}"


def test_plain_exception_args_hide_the_value() -> None:
    err = ValueError("bad key", Secret(VALUE))
    assert VALUE not in str(err)
    assert VALUE not in repr(err)


def test_logging_a_secret_argument_hides_the_value() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    # Own level and no propagation: CLI tests reconfigure the root logger (basicConfig).
    log = logging.getLogger("keyguard.test_secret")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.warning("value is %s / %r", Secret(VALUE), Secret(VALUE))
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert stream.getvalue() == f"value is {REDACTED} / {REDACTED}\n"


@settings(max_examples=200, deadline=None)
@given(value=st.text(), spec=st.sampled_from(["", "s", ">30", "^10", "!<5"]))
def test_every_value_renders_as_the_same_placeholder(value: str, spec: str) -> None:
    secret = Secret(value)
    assert repr(secret) == REDACTED
    assert str(secret) == REDACTED
    assert format(secret, spec) == REDACTED
    assert secret.reveal() == value
