"""Bulk import of large LiteLLM JSONL spend logs: DuckDB reads the rows, Python sees a sample.

Why: the row-by-row importer costs ~100-200 us of Python per LiteLLM row (JSON decode, a
SimHash and phrasing markers of the prompt, the event object), so a 1M-row daily log took
minutes, while DuckDB reads the same file in seconds. Here DuckDB parses the file into a
staging table, and Python only touches what needs Python:

* **Distinct values.** Fields that repeat (key hash, alias, team, user, model, call type,
  IP, user agent, status, cached-token details) are read as raw JSON text; each distinct
  combination is decoded and mapped by the row importer's own code
  (:func:`~keyguard.usage.importers.litellm.event_from_row`, then the reader's
  sanitising), so names, fallbacks, scrubbing and countries are exactly those of a
  row-by-row read. A log repeats a few thousand combinations a million times.
* **Prompt analysis on a sample.** Every row gets its prompt length from SQL. The SimHash
  and the phrasing markers are computed for a weighted sample per key and UTC day plus
  every prompt that could be an extraction attempt or hold a trap string
  (``keyguard.usage.sampling``).

Exactness: a file is taken by this path only if every row is of the plain shape (see
:data:`_BAD`: typed tokens, ISO times, string ids, ``messages`` a list of objects whose
``content`` is text). Rows whose prompt has another shape (content parts, a bare string,
``proxy_server_request`` only) are read by Python from their raw JSON. Anything else (a
row the row importer would reject, a line DuckDB cannot parse, too many distinct values)
makes :func:`load` decline, and the reader reads the file row by row as before, with its
``file:line`` errors. Stored events carry ``origin`` = the file (no line numbers).

Two reads of the file: the first stages one narrow row per record (prompt length and
pre-filter verdict, not the text); the second maps the distinct field combinations and
fetches the texts of the sampled prompts only.

Memory: the staging table holds no prompt text (~150 bytes a row), so a 1M-row log peaks
at ~750 MiB and no prompt text spills to DuckDB's temp directory; only rows whose prompt
Python decodes (see above) keep their text, in ``kg_odd``. The prompt sample is ~cap x
key-days texts.
"""

# NOTE: every SQL string in this module is assembled from module constants and column names;
# values (paths, times, patterns) are bound parameters.
# ruff: noqa: S608
from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyguard.config import UsageConfig
from keyguard.usage import prompt_markers, sampling
from keyguard.usage.importers._common import BadRow

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

#: Format handled here (the ``source_format`` of the stored events).
FORMAT = "litellm"
#: Distinct combinations of one field group above which the file is read row by row.
MAX_DISTINCT = 100_000
#: DuckDB memory while staging; larger files spill to its temp directory.
MEMORY_LIMIT = "1GB"
_DUMMY_TIME = "2000-01-01T00:00:00"

_COLUMNS = (
    "{'request_id': 'JSON', 'api_key': 'JSON', 'startTime': 'VARCHAR', 'prompt_tokens': 'JSON', "
    "'completion_tokens': 'JSON', 'spend': 'JSON', 'user': 'JSON', 'team_id': 'JSON', "
    "'call_type': 'JSON', 'model': 'JSON', 'model_group': 'JSON', "
    "'requester_ip_address': 'JSON', 'user_agent': 'JSON', 'status': 'JSON', "
    "'messages': 'JSON', 'proxy_server_request': 'STRUCT(messages JSON, prompt JSON, "
    "headers JSON)', 'metadata': 'STRUCT(user_api_key JSON, user_api_key_alias JSON, "
    "user_api_key_user_id JSON, user_api_key_team_id JSON, requester_ip_address JSON, "
    "user_agent JSON, status JSON, error_information JSON, additional_usage_values JSON)'}")

# Field groups: raw JSON text, mapped per distinct combination (see _map_groups).
_IDENT = ("api_key", "m_user_api_key", "m_alias", "usr", "m_user_id", "team_id", "m_team_id",
          "call_type", "model", "model_group")
_SOURCE = ("ip", "m_ip")
_MISC = ("user_agent", "m_user_agent", "h_ua", "h_ua2", "status", "m_status", "m_error_code",
         "u_cache_read", "u_cached", "u_cached_dotted")

#: Times both DuckDB and ``datetime.fromisoformat`` read the same way (else: row by row).
_TIME = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d"
         r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$")
#: Characters ``str.strip`` removes, as an RE2 class.
_SPACE = (r"[\s\x0b\x1c-\x1f\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
          r"\x{205f}\x{3000}]")
_COUNT = r"^\d{1,18}$"
_FLOAT = r"^-?\d{1,20}(\.\d{1,40})?([eE][-+]?\d{1,3})?$"
_NOT_OBJECT = "({0} IS NOT NULL AND {0} NOT LIKE '{{%' AND {0} <> 'null')"

# NOTE: the SQL below is assembled from the constants above only; values are parameters.
_RAW = f"""
WITH raw AS (
  SELECT request_id, startTime AS t_text, prompt_tokens AS pt, completion_tokens AS ct,
         spend AS sp, api_key, metadata.user_api_key AS m_user_api_key,
         metadata.user_api_key_alias AS m_alias, "user" AS usr,
         metadata.user_api_key_user_id AS m_user_id, team_id,
         metadata.user_api_key_team_id AS m_team_id, call_type, model, model_group,
         requester_ip_address AS ip, metadata.requester_ip_address AS m_ip, user_agent,
         metadata.user_agent AS m_user_agent, proxy_server_request.headers AS headers,
         json_extract(proxy_server_request.headers, '$."user-agent"') AS h_ua,
         json_extract(proxy_server_request.headers, '$."User-Agent"') AS h_ua2,
         status, metadata.status AS m_status, metadata.error_information AS m_error,
         json_extract(metadata.error_information, '$.error_code') AS m_error_code,
         metadata.additional_usage_values AS m_usage,
         json_extract(metadata.additional_usage_values, '$.cache_read_input_tokens')
           AS u_cache_read,
         json_extract(metadata.additional_usage_values,
                      '$.prompt_tokens_details.cached_tokens') AS u_cached,
         json_extract(metadata.additional_usage_values,
                      '$."prompt_tokens_details.cached_tokens"') AS u_cached_dotted,
         messages,
         proxy_server_request.messages AS p_messages, proxy_server_request.prompt AS p_prompt,
         -- names a row's prompt in both reads: rows with equal fields have equal text
         hash(messages, proxy_server_request.messages, proxy_server_request.prompt) AS rid
  FROM read_json($1, format = 'newline_delimited', columns = {_COLUMNS},
                 maximum_object_size = $2, compression = $3))"""

#: The text of messages of the plain shape (a list of objects whose ``content`` is text or
#: null), which SQL extracts as Python does; rows of other shapes are flagged odd.
_TEXT = "nullif(array_to_string(json_extract_string(messages, '$[*].content'), chr(10)), '')"

#: Staging: one narrow row per record. The prompt text is not kept (it is most of the
#: file, and would spill to disk): only its length, whether the pre-filter matched it
#: (``forced``, see ``keyguard.usage.sampling``) and ``rid``; the second read
#: (:data:`_GROUPS`) fetches the texts of the sample.
_STAGE = f"""
CREATE OR REPLACE TABLE kg_stage AS
{_RAW},
texted AS (
  -- json_structure merges the shapes of all elements: '[{{..."content":"VARCHAR"...}}]'
  -- when every element is an object whose content is text or null
  SELECT *, {_TEXT} AS text, json_structure(messages) AS shape FROM raw)
-- NOTE: DuckDB evaluates an expression once per reference, so each costly function
-- (JSON extraction, regex) appears once per row; checks that combine columns run later.
SELECT hash(api_key, m_user_api_key) AS gk,
       hash({", ".join(_IDENT)}) AS gi, hash({", ".join(_SOURCE)}) AS gs,
       hash({", ".join(_MISC)}) AS gm, rid,
       CASE WHEN request_id LIKE '"%' THEN json_extract_string(request_id, '$') END
         AS event_id,
       t_text, CAST(TRY_CAST(t_text AS TIMESTAMPTZ) AS TIMESTAMP) AS time,
       CASE WHEN pt IS NULL OR pt = 'null' THEN 0 ELSE TRY_CAST(pt AS BIGINT) END
         AS input_tokens,
       CASE WHEN ct IS NULL OR ct = 'null' THEN 0 ELSE TRY_CAST(ct AS BIGINT) END
         AS output_tokens,
       CASE WHEN sp IS NULL OR sp = 'null' THEN NULL ELSE TRY_CAST(sp AS DOUBLE) END AS cost,
       length(text) AS chars,
       coalesce(regexp_matches(text, $4, 'i'), false) AS forced,
       -- raw JSON of every row whose prompt Python reads itself: messages not of the plain
       -- shape, or no text in them but a proxy_server_request to fall back on
       CASE WHEN (messages IS NOT NULL AND messages <> 'null'
                  AND (messages NOT LIKE '[%' OR shape NOT LIKE '[{{%'
                       OR coalesce(json_extract_string(shape, '$[0].content'), 'NULL')
                          NOT IN ('VARCHAR', 'NULL')))
            OR (text IS NULL AND (coalesce(p_messages, 'null') <> 'null'
                                  OR coalesce(p_prompt, 'null') <> 'null'))
            THEN [messages, p_messages, p_prompt] END AS odd_json,
       -- a row the row importer might read differently: then it reads the whole file
       (request_id IS NOT NULL AND request_id <> 'null'
            AND (request_id NOT LIKE '"%' OR contains(request_id, '\\')
                 OR request_id = '""'
                 OR regexp_matches(request_id, '^"{_SPACE}|{_SPACE}"$')))
       OR (pt IS NOT NULL AND pt <> 'null' AND NOT regexp_matches(pt, '{_COUNT}'))
       OR (ct IS NOT NULL AND ct <> 'null' AND NOT regexp_matches(ct, '{_COUNT}'))
       OR (sp IS NOT NULL AND sp <> 'null' AND NOT regexp_matches(sp, '{_FLOAT}'))
       OR {_NOT_OBJECT.format("headers")} OR {_NOT_OBJECT.format("m_error")}
       OR {_NOT_OBJECT.format("m_usage")}
       AS bad
FROM texted
"""

#: The second read of the file: each distinct combination of the repeated fields (cheaper
#: than keeping ~20 JSON strings per row in the staging table), and the text of each
#: sampled prompt (``kg_want``: the ``rid`` of picked rows of the plain shape).
_GROUPS = f"""
{_RAW},
marked AS (SELECT *, CASE WHEN rid IN (SELECT rid FROM kg_want) THEN rid END AS pid
           FROM raw)
SELECT hash({", ".join(_IDENT)}) AS gi, hash({", ".join(_SOURCE)}) AS gs,
       hash({", ".join(_MISC)}) AS gm, pid, grouping(gi, gs, gm, pid) AS level,
       any_value(CASE WHEN pid IS NOT NULL THEN {_TEXT} END) AS text,
       {", ".join(f"any_value({name})" for name in (*_IDENT, *_SOURCE, *_MISC))}
FROM marked GROUP BY GROUPING SETS ((gi), (gs), (gm), (pid))
"""

#: Rows whose prompt text Python reads from their raw JSON (flagged in :data:`_STAGE`).
#: One batch of them after rowid $1 (keyset pagination: the cursor inserts in between).
_ODD = ("SELECT rowid, odd_json FROM kg_stage WHERE odd_json IS NOT NULL AND rowid > $1 "
        "ORDER BY rowid LIMIT $2")

#: Rows the row importer might read differently from :data:`_STAGE` (see _load).
_BAD = f"""
SELECT count(*), count_if(bad OR time IS NULL OR t_text IS NULL
                          OR NOT regexp_matches(t_text, '{_TIME}'))
FROM kg_stage
"""

#: In-memory databases of the staging tables (see :func:`load`: one per file) and tables.
_DB = "kg_bulk"
_TABLES = ("kg_stage", "kg_odd", "kg_ident", "kg_source", "kg_misc", "kg_fate", "kg_pick",
           "kg_want", "kg_analysis")
#: Odd rows decoded by Python per batch (bounds the texts held in Python at once).
_ODD_BATCH = 20_000


@dataclass(slots=True)
class Loaded:
    """What :func:`load` did with one file (counts for the store's AddResult and stats)."""

    rows: int = 0  # records in the file
    file_duplicates: int = 0  # repeated request ids inside the file
    inserted: int = 0
    stored_duplicates: int = 0  # request id already in the store
    below_watermark: int = 0
    before_since: int = 0
    latest: datetime | None = None  # newest inserted event time (naive UTC)
    analysed: int = 0  # prompts fingerprinted and classified in Python
    estimated: int = 0  # prompts represented by the weighted sample instead


@dataclass(slots=True)
class BulkFile:
    """A file the reader hands to the store for :func:`load` instead of reading it itself.

    The store sets ``loaded``; if it stays None (the bulk path declined, ``declined`` says
    why), the reader goes on to read the file row by row.
    """

    path: Path
    config: UsageConfig
    loaded: Loaded | None = None
    declined: str | None = None


def eligible(path: Path, head: bytes, importer_name: str, config: UsageConfig) -> bool:
    """True for a LiteLLM JSONL file (gzip too) of at least ``[usage] bulk_min_mb`` on disk.

    ``head`` is the file's first decompressed bytes, as the reader sniffed them.
    """
    if importer_name != FORMAT or config.bulk_min_mb < 0:
        return False
    if not head.lstrip().startswith(b"{") or not (b"}\n{" in head or b"}\r\n{" in head
                                                   or head.count(b"\n") <= 1):
        return False  # not one object per line (a JSON array, a pretty-printed page)
    try:
        return path.stat().st_size >= config.bulk_min_mb * 1024 * 1024
    except OSError:
        return False


def _compression(path: Path) -> str:
    """DuckDB's ``compression`` for the file: by its magic bytes, not its name (as the reader)."""
    with path.open("rb") as raw:
        return "gzip" if raw.read(2) == b"\x1f\x8b" else "none"


class Declined(Exception):
    """The file is not of the plain shape; it is read row by row instead."""


def load(job: BulkFile, con: duckdb.DuckDBPyConnection, run: int, since: datetime | None,
         mark: datetime | None, insert_columns: Sequence[str]) -> Loaded | None:
    """Import ``job.path`` into ``events`` as part of ``run``; None when the path declines.

    ``since`` and ``mark`` (the file's watermark) are naive UTC, as the store keeps times.
    ``insert_columns`` are the store's event columns in order (``run`` follows).

    Why a second connection: a failed DuckDB statement aborts its whole transaction, and
    ``con`` holds this run's uncommitted events. Everything that can fail on bad input runs
    on a cursor (its own transaction) in an in-memory database ``kg_bulk``; ``con`` only
    reads those tables and runs the final INSERT, so a decline leaves the run intact.
    """
    import duckdb

    # NOTE: a fresh database per file: con's transaction fixes its view of an attached
    # database when it first reads it, so a second file of the same run staged in the
    # same database would be invisible to it (it would read the first file's tables).
    db = f"{_DB}_{next(_SEQUENCE)}"
    main = con.execute("SELECT current_database()").fetchone()
    cur = con.cursor()
    try:
        cur.execute(f"ATTACH ':memory:' AS {db}")
        cur.execute(f"USE {db}")
        out = _load(job, con, cur, db, run, since, mark, insert_columns)
        log.info("%s: loaded by DuckDB: %d rows, %d prompts analysed, %d estimated from "
                 "the sample", job.path, out.rows, out.analysed, out.estimated)
        return out
    except (Declined, duckdb.Error) as exc:
        # NOTE: DuckDB's parse errors quote the offending value, which may be a secret.
        from keyguard.redact import scrub

        job.declined = scrub(" ".join(str(exc).split()))[:200]
        log.info("%s: read row by row instead of in bulk: %s", job.path, job.declined)
        return None
    finally:
        for table in _TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {db}.{table}")
        cur.execute("RESET memory_limit")
        if main:
            cur.execute(f'USE "{main[0]}"')
            cur.execute(f"DETACH {db}")
        cur.close()


_SEQUENCE = itertools.count(1)


def _load(job: BulkFile, con: duckdb.DuckDBPyConnection, cur: duckdb.DuckDBPyConnection,
          db: str, run: int, since: datetime | None, mark: datetime | None,
          insert_columns: Sequence[str]) -> Loaded:
    config = job.config
    cur.execute("SET TimeZone = 'UTC'")
    cur.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    read_args = [str(job.path), config.max_record_bytes, _compression(job.path)]
    traps = prompt_markers.from_config(config).traps
    cur.execute(_STAGE, [*read_args, sampling.prefilter(traps)])
    rows, bad = cur.execute(_BAD).fetchone() or (0, 0)
    if bad:
        raise Declined(f"{bad} row(s) not of the plain shape")
    out = Loaded(rows=int(rows))
    _odd_prompts(cur, sampling.prefilter_literals(traps))
    _fates(cur, out, since, mark)
    total = sampling.pick(cur, config)
    texts = _map_groups(cur, job, read_args)
    picked: list[tuple[int, float, bool, str]] = []
    for srow, w, forced, rid, odd in cur.execute("""
            SELECT p.srow, p.w, p.forced, s.rid, o.text
            FROM kg_pick p JOIN kg_stage s ON s.rowid = p.srow
            LEFT JOIN kg_odd o ON o.srow = p.srow ORDER BY p.srow""").fetchall():
        text = odd if odd is not None else texts.get(rid)
        if text is None:  # a sampled prompt the second read did not find
            raise Declined("the file changed while it was read")
        picked.append((srow, w, forced, text))
    sampling.write_analysis(cur, config, picked)
    out.analysed, out.estimated = len(picked), total - len(picked)
    _insert(con, db, job, run, insert_columns, out)
    return out


def _loads(text: str | None) -> object:
    return None if text is None else json.loads(text)


def _fake_event(row: dict[str, object]) -> Any:
    """The row importer's event (sanitised as the reader does) for a partial row."""
    from keyguard.usage.importers.litellm import event_from_row
    from keyguard.usage.reader import sanitised

    row.setdefault("startTime", _DUMMY_TIME)
    row.setdefault("api_key", "x")
    try:
        return sanitised(event_from_row(row))
    except BadRow as bad:
        raise Declined(f"a row the row importer rejects ({bad.reason})") from None


def _ident(api_key: str | None, m_key: str | None, m_alias: str | None, usr: str | None,
           m_user: str | None, team: str | None, m_team: str | None, call_type: str | None,
           model: str | None, model_group: str | None) -> tuple[object, ...]:
    event = _fake_event({
        "api_key": _loads(api_key), "user": _loads(usr), "team_id": _loads(team),
        "call_type": _loads(call_type), "model": _loads(model),
        "model_group": _loads(model_group),
        "metadata": {"user_api_key": _loads(m_key), "user_api_key_alias": _loads(m_alias),
                     "user_api_key_user_id": _loads(m_user),
                     "user_api_key_team_id": _loads(m_team)}})
    return (event.key_id, event.key_alias, event.principal, event.account, event.action,
            event.model)


def _source(ip: str | None, m_ip: str | None) -> tuple[object, ...]:
    event = _fake_event({"requester_ip_address": _loads(ip),
                         "metadata": {"requester_ip_address": _loads(m_ip)}})
    return (event.source_ip, event.source_host)


def _misc(agent: str | None, m_agent: str | None, h_ua: str | None, h_ua2: str | None,
          status: str | None, m_status: str | None, error_code: str | None,
          cache_read: str | None, cached: str | None, dotted: str | None
          ) -> tuple[object, ...]:
    """Only the sub-fields the row importer reads of headers, error and usage details.

    Those objects also hold per-request values (request ids, reasoning tokens, error
    text), which would make every combination distinct.
    """
    usage: dict[str, object] = {"cache_read_input_tokens": _loads(cache_read),
                                "prompt_tokens_details": {"cached_tokens": _loads(cached)}}
    if dotted is not None:
        usage["prompt_tokens_details.cached_tokens"] = _loads(dotted)
    headers = {name: value for name, value in (("user-agent", _loads(h_ua)),
                                               ("User-Agent", _loads(h_ua2)))
               if value is not None}
    event = _fake_event({
        "user_agent": _loads(agent), "status": _loads(status),
        "proxy_server_request": {"headers": headers},
        "metadata": {"user_agent": _loads(m_agent), "status": _loads(m_status),
                     "error_information": {"error_code": _loads(error_code)},
                     "additional_usage_values": usage}})
    return (event.user_agent, event.error_code, event.cached_tokens)


def _map_groups(cur: duckdb.DuckDBPyConnection, job: BulkFile, read_args: list[object]
                ) -> dict[int, str]:
    """Map each distinct combination of the repeated fields with the row importer's code.

    The same second read of the file fetches the sampled prompts' texts: returned by
    ``rid``, for the picked rows of the plain shape (``kg_want``).
    Combinations are keyed by their 64-bit hash (integer GROUP BYs and joins instead of
    ten string columns); two different combinations with one hash would take ~2^32 of them.
    """
    import numpy as np

    cur.execute("CREATE OR REPLACE TABLE kg_want AS SELECT DISTINCT s.rid FROM kg_pick p "
                "JOIN kg_stage s ON s.rowid = p.srow WHERE s.odd_json IS NULL")
    rows = cur.execute(_GROUPS, read_args).fetchall()  # the same file, read the same way
    # grouping() bits: 8 gi, 4 gs, 2 gm, 1 pid (set when rolled up); values follow in
    # name order after gi, gs, gm, pid, level and text
    texts = {row[3]: row[5] for row in rows if row[4] == 14 and row[3] is not None}
    plans = (("kg_ident", "gi", 7, _IDENT, _ident,
              ("key_id", "key_alias", "principal", "account", "action", "model")),
             ("kg_source", "gs", 11, _SOURCE, _source, ("source_ip", "source_host")),
             ("kg_misc", "gm", 13, _MISC, _misc, ("user_agent", "error_code", "cached_tokens")))
    names = (*_IDENT, *_SOURCE, *_MISC)
    for table, key, level, fields, mapper, outputs in plans:
        mine = [row for row in rows if row[4] == level]
        if len(mine) > MAX_DISTINCT:
            raise Declined(f"{len(mine)} distinct {table[3:]} values")
        position = ("gi", "gs", "gm").index(key)
        at = [6 + names.index(name) for name in fields]
        mapped = [mapper(*(row[i] for i in at)) for row in mine]
        data: dict[str, Any] = {key: np.array([row[position] for row in mine], dtype=np.uint64)}
        for i, name in enumerate(outputs):
            data[name] = np.array([m[i] for m in mapped], dtype=object)
        if table == "kg_source":
            data["country"] = np.array(_countries(list(data["source_ip"]), job.config),
                                       dtype=object)
        kg_map = data  # noqa: F841 - read by DuckDB's replacement scan below
        casts = ", ".join(f"{name}::BIGINT AS {name}" if name == "cached_tokens"
                          else f"{name}::VARCHAR AS {name}" for name in data if name != key)
        cur.execute(f"CREATE OR REPLACE TABLE {table} AS "
                    f"SELECT {key}::UBIGINT AS {key}, {casts} FROM kg_map")
        # NOTE: the groups come from a second read of the file; one that changed in
        # between (rotated, rewritten) could lack a staged row's group, and the INSERT's
        # join would then drop that row silently.
        missing = cur.execute(f"SELECT count(*) FROM kg_stage ANTI JOIN {table} USING ({key})"
                              ).fetchone()
        if missing and missing[0]:
            raise Declined("the file changed while it was read")
    return texts


def _countries(ips: list[object], config: UsageConfig) -> list[str | None]:
    if not config.geo:
        return [None] * len(ips)
    from keyguard.usage.geo import countries

    return countries([ip if isinstance(ip, str) else None for ip in ips])


def _odd_prompts(cur: duckdb.DuckDBPyConnection, literals: Sequence[str]) -> None:
    """Prompt text of rows whose prompt is not a plain message list, decoded by Python.

    Each text goes to ``kg_odd`` (read back only if the row is sampled); the row's length
    and pre-filter verdict (``literals``, lower-case, as ``sampling.prefilter``) are set
    from it. In batches, so a file of such rows never sits in Python's memory at once.
    """
    import numpy as np

    from keyguard.usage.importers.litellm import prompt_text

    cur.execute("CREATE OR REPLACE TABLE kg_odd (srow BIGINT, text VARCHAR, forced BOOLEAN)")
    last = -1
    while batch := cur.execute(_ODD, [last, _ODD_BATCH]).fetchall():
        texts = []
        for _, (messages, p_messages, p_prompt) in batch:
            request = {"messages": _loads(p_messages), "prompt": _loads(p_prompt)}
            texts.append(prompt_text(_loads(messages), request))
        kg_batch = {  # noqa: F841 - read by DuckDB's replacement scan below
            "srow": np.array([row[0] for row in batch], dtype=np.int64),
            "text": np.array(texts, dtype=object),
            "forced": np.array([text is not None and any(
                literal in text.lower() for literal in literals) for text in texts])}
        cur.execute("INSERT INTO kg_odd SELECT srow::BIGINT, text::VARCHAR, forced "
                    "FROM kg_batch")
        last = batch[-1][0]
    cur.execute("UPDATE kg_stage SET chars = length(o.text), forced = o.forced FROM kg_odd o "
                "WHERE kg_stage.rowid = o.srow")


def _fates(cur: duckdb.DuckDBPyConnection, out: Loaded, since: datetime | None,
           mark: datetime | None) -> None:
    """Which rows may be inserted (fate 0), in the order the row-by-row path decides it.

    1: repeats a request id earlier in the file (the reader's dedupe), 2: before
    ``since``, 3: at or below the file's watermark. A request id already stored is left
    out by the INSERT itself (:func:`_insert`): only the store's connection sees this
    run's earlier, uncommitted events.
    """
    first = ""
    dups = cur.execute("SELECT count(event_id) - count(DISTINCT event_id) FROM kg_stage"
                       ).fetchone()
    if dups and dups[0]:
        first = ("LEFT JOIN (SELECT event_id, min(rowid) AS first FROM kg_stage "
                 "WHERE event_id IS NOT NULL GROUP BY event_id) d USING (event_id)")
    repeat = "s.rowid <> d.first" if first else "false"
    cur.execute(f"""
        CREATE OR REPLACE TABLE kg_fate AS
        SELECT s.rowid AS srow, CASE
          WHEN s.event_id IS NOT NULL AND {repeat} THEN 1
          WHEN $1::TIMESTAMP IS NOT NULL AND s.time < $1::TIMESTAMP THEN 2
          WHEN $2::TIMESTAMP IS NOT NULL AND (s.time < $2::TIMESTAMP
               OR (s.time = $2::TIMESTAMP AND s.event_id IS NULL)) THEN 3
          ELSE 0 END AS fate
        FROM kg_stage s {first}""", [since, mark])
    counts = dict(cur.execute("SELECT fate, count(*) FROM kg_fate GROUP BY fate").fetchall())
    out.file_duplicates = int(counts.get(1, 0))
    out.before_since = int(counts.get(2, 0))
    out.below_watermark = int(counts.get(3, 0))


def _insert(con: duckdb.DuckDBPyConnection, db: str, job: BulkFile, run: int,
            insert_columns: Sequence[str], out: Loaded) -> None:
    """One INSERT of the rows whose fate is 0, with mapped fields and the analysis joined."""
    exprs = {
        "time": "s.time", "key_id": "i.key_id", "source_format": f"'{FORMAT}'",
        "key_alias": "i.key_alias", "source_ip": "g.source_ip", "country": "g.country",
        "model": "i.model", "input_tokens": "s.input_tokens",
        "output_tokens": "s.output_tokens", "cached_tokens": "m.cached_tokens",
        "requests": "1", "user_agent": "m.user_agent", "error_code": "m.error_code",
        "prompt_fingerprint": "a.fp", "prompt_chars": "s.chars",
        "principal": "i.principal", "account": "i.account", "source_host": "g.source_host",
        "action": "i.action", "event_id": "s.event_id", "cost_usd": "s.cost",
        "origin": "$1::VARCHAR", "prompt_markers": "a.markers", "prompt_weight": "a.w"}
    select = ", ".join(exprs.get(name, "NULL") for name in insert_columns)
    # NOTE: the store's connection first touches kg_bulk here, so it sees every table the
    # cursor made (its snapshot of kg_bulk starts now).
    row = con.execute(f"""
        INSERT INTO events ({", ".join(insert_columns)}, run)
        WITH stored AS (
          SELECT DISTINCT event_id FROM events WHERE source_format = '{FORMAT}'
          AND event_id IN (SELECT event_id FROM {db}.kg_stage WHERE event_id IS NOT NULL))
        SELECT {select}, $2::BIGINT
        FROM {db}.kg_stage s JOIN {db}.kg_fate f ON f.srow = s.rowid AND f.fate = 0
        JOIN {db}.kg_ident i USING (gi) JOIN {db}.kg_source g USING (gs)
        JOIN {db}.kg_misc m USING (gm)
        LEFT JOIN {db}.kg_analysis a ON a.srow = s.rowid
        LEFT JOIN stored st ON st.event_id = s.event_id
        WHERE st.event_id IS NULL""", [str(job.path), run]).fetchone()
    out.inserted = int(row[0]) if row else 0
    kept = con.execute(f"SELECT count(*) FROM {db}.kg_fate WHERE fate = 0").fetchone()
    out.stored_duplicates = (int(kept[0]) if kept else 0) - out.inserted
    latest = con.execute(f"""
        SELECT max(time) FROM events WHERE run = $1 AND source_format = '{FORMAT}'
        AND origin = $2""", [run, str(job.path)]).fetchone()
    out.latest = latest[0] if latest else None
