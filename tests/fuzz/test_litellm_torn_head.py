"""LiteLLM JSONL whose first line is torn or junk (a spend log cut mid-record).

The good lines after it must be read: a later line that starts an object and a first line
that is no CSV header mean JSONL (``_common.is_jsonl_after_junk``, shared with generic).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.formats import BY_NAME
from tests.fuzz.profiles import budget
from tests.fuzz.test_usage_importers import _expected, _got, _junk, error_lines, read, rows, write
from tests.fuzz.test_usage_importers import workdir as workdir


@given(good=st.lists(rows, min_size=1, max_size=4), junk=_junk)
@budget(0.5)
def test_litellm_jsonl_survives_a_broken_first_line(workdir: Path, good: list, junk: bytes) -> None:  # type: ignore[type-arg]
    fmt = BY_NAME["litellm-jsonl"]
    body, _ = fmt.file([junk, *(fmt.record(r, n) for n, r in enumerate(good))])
    events, stats = read(write(workdir, body), "litellm")
    assert error_lines(stats) == [1]
    assert sorted(map(_got, events)) == sorted(_expected(fmt, r) for r in good)
