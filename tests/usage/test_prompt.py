"""Prompt fingerprints: stable, template-tolerant, text-free."""

from __future__ import annotations

import itertools
import statistics

from hypothesis import given
from hypothesis import strategies as st

from keyguard.usage import prompt

TEMPLATE = ("You are a support agent. Customer {name} (id {id}) asks about order {order}: "
            "where is my parcel? Answer politely and include the tracking link.")


UNRELATED = [
    "Write a Python function that parses CloudTrail logs from S3 and counts the API calls "
    "per access key and per region.",
    "Translate the following paragraph into French and keep the formatting intact.",
    "List ten creative names for a coffee shop near the beach.",
    "Explain the difference between TCP and UDP to a beginner with examples.",
    "Generate SQL that returns the top customers by revenue for last quarter.",
]


def test_same_template_is_closer_than_any_unrelated_prompt() -> None:
    filled = [prompt.fingerprint(TEMPLATE.format(name=name, id=i * 7919, order=f"A-{i * 31337}"))
              for i, name in enumerate(["Ann", "Bob", "Chen", "Dana", "Eve", "Farid"], 1)]
    others = [prompt.fingerprint(text) for text in UNRELATED]
    same = [prompt.distance(a, b) for a, b in itertools.combinations(filled, 2)]
    apart = [prompt.distance(a, b) for a in filled for b in others]
    assert max(same) < min(apart)
    assert statistics.median(same) <= 12
    assert statistics.median(apart) >= 24


def test_numbers_and_ids_do_not_change_the_fingerprint() -> None:
    assert prompt.fingerprint("invoice 12 for 3f9a1c2e77b04d11aa") == prompt.fingerprint(
        "invoice 98765 for 0000aaaa1111bbbb22")


def test_format_and_no_text_leak() -> None:
    fp = prompt.fingerprint("the secret launch code is swordfish")
    assert fp.startswith("sh2:")
    assert len(fp) == 4 + 16
    assert "swordfish" not in fp


@given(st.text(max_size=300))
def test_any_text_gives_a_stable_fingerprint(text: str) -> None:
    fp = prompt.fingerprint(text)
    assert fp == prompt.fingerprint(text)
    assert prompt.distance(fp, fp) == 0
    int(fp.removeprefix("sh2:"), 16)


def test_messages_text_shapes() -> None:
    assert prompt.messages_text([{"role": "system", "content": "a"},
                                 {"role": "user", "content": [{"type": "text", "text": "b"},
                                                              {"type": "image_url"}]}]) == "a\nb"
    assert prompt.messages_text({"messages": [{"content": "x"}]}) == "x"
    assert prompt.messages_text("plain") == "plain"
    assert prompt.messages_text({}) is None
    assert prompt.messages_text([1, None, {"content": 5}]) is None


def test_long_prompts_cost_is_bounded() -> None:
    long = "word " * 1_000_000
    assert prompt.fingerprint(long) == prompt.fingerprint(long[: prompt.MAX_CHARS])
