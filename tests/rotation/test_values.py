"""Rewriting a stored value swaps the credential and keeps the value's shape."""

from __future__ import annotations

import json

import pytest

from keyguard.rotation.values import ValueShapeError, extract, holds, rewrite
from keyguard.secret import Secret

OLD_ID, NEW_ID = "AKIAOLDOLDOLDOLDOLD1", "AKIANEWNEWNEWNEWNEW2"
OLD = "old/Secret+Value0123456789abcdefghijklmn"
NEW = "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"


def test_json_keeps_order_spacing_and_other_fields() -> None:
    text = (f'{{\n    "region": "eu-west-1",\n    "aws_access_key_id": "{OLD_ID}",\n'
            f'    "aws_secret_access_key": "{OLD}",\n    "n": 3\n}}\n')
    out = rewrite(Secret(text), "aws_secret_access_key", OLD_ID, NEW_ID, Secret(NEW)).reveal()
    assert out == text.replace(OLD_ID, NEW_ID).replace(OLD, NEW)


def test_nested_json_path_and_escaped_slash_fallback() -> None:
    doc = {"creds": [{"aws_access_key_id": OLD_ID, "aws_secret_access_key": OLD}], "x": 1}
    escaped = json.dumps(doc).replace("/", "\\/")  # some encoders escape '/'
    out = rewrite(Secret(escaped), "creds[0].aws_secret_access_key", OLD_ID, NEW_ID, Secret(NEW))
    assert json.loads(out.reveal()) == {"creds": [{"aws_access_key_id": NEW_ID,
                                                   "aws_secret_access_key": NEW}], "x": 1}
    assert holds(out, "creds[0].aws_secret_access_key", Secret(NEW))


def test_env_text_and_plain_value() -> None:
    env = f"# c\nAWS_ACCESS_KEY_ID={OLD_ID}\nexport AWS_SECRET_ACCESS_KEY='{OLD}'\nX=1\n"
    out = rewrite(Secret(env), "AWS_SECRET_ACCESS_KEY", OLD_ID, NEW_ID, Secret(NEW)).reveal()
    assert out == env.replace(OLD_ID, NEW_ID).replace(OLD, NEW)
    assert rewrite(Secret(OLD + "\n"), None, None, None, Secret(NEW)).reveal() == NEW + "\n"


def test_missing_field_is_an_error_without_the_value() -> None:
    with pytest.raises(ValueShapeError) as info:
        rewrite(Secret(json.dumps({"other": OLD})), "aws_secret_access_key", OLD_ID, NEW_ID,
                Secret(NEW))
    assert OLD not in str(info.value)
    assert NEW not in str(info.value)
    assert extract(Secret("   "), None) is None
