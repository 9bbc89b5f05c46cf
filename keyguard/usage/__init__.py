"""Usage-log analysis: provider exports -> :class:`~keyguard.model.UsageEvent` -> store -> detectors.

Design note (issue 4). Import-light: nothing is imported here.

Flow::

    reader.py (files, dirs, globs, gzip, format detection, dedupe, countries, ImportStats)
      -> importers/<format>.py  (bytes -> UsageEvent | RowError, one module per export)
      -> reader: secret-looking text scrubbed (aliases, agents), raw key ids -> SHA-256
      -> store.py (DuckDB usage.duckdb) -> detectors/* (settings.py: config) -> Alert
      -> alerts.py / suppress.py / render/* / notify.py (cli/usage.py wires them)

Event schema (``keyguard.model.UsageEvent``; flat scalars so DuckDB ingests rows as-is):

=====================  ==============================================================
time                   UTC; request time, or bucket start for aggregate reports
bucket_end             exclusive bucket end (aggregate reports only), else None
key_id                 the caller key: AWS access key id (else principal ARN), LiteLLM
                       sha256 key hash, Anthropic ``apikey_...``, OpenAI ``key_...``;
                       ``(unattributed)`` when the export names no key
key_alias              human name of the key when the export has one (LiteLLM alias)
source_format          importer name (``cloudtrail``, ``litellm``...)
source_ip / country    parseable IP only / ISO country from iptocc (None if private)
source_host            non-IP caller: ``lambda.amazonaws.com``, ``AWS Internal``
region, model          AWS region (or Anthropic inference_geo), model id
input/output/cached    tokens; input includes cached and cache-write tokens
requests               1 per request row; aggregate count; 0 = unknown (Anthropic)
user_agent, error_code caller agent; provider error code (None on success)
prompt_fingerprint     ``sh2:<16 hex>`` SimHash of normalised prompt text (usage.prompt)
prompt_chars           prompt length in characters; the text itself is never kept
prompt_markers         phrasing classes found at import (``reasoning``, ``extraction``,
                       ``trap``, ``topic:*``; usage.prompt_markers), never text
prompt_weight          requests of the key's UTC day this row's prompt analysis stands
                       for (bulk import samples prompts); None = 1. Rows not analysed
                       have no fingerprint/markers; detectors sum weights, not rows
principal, account     IAM ARN / gateway user / OpenAI user / Anthropic workspace;
                       AWS account / OpenAI project / LiteLLM team
action, service        CloudTrail eventName + eventSource; LiteLLM call_type
event_id               CloudTrail eventID, LiteLLM request_id (dedupe key),
                       Bedrock requestId
cost_usd, origin       gateway-reported spend; ``file:line`` for alert evidence
=====================  ==============================================================

What each importer maps:

* ``cloudtrail``: every record (not only Bedrock). key = userIdentity.accessKeyId, else
  arn, principalId, invokedBy; model = requestParameters.modelId (InvokeModel/Converse);
  sourceIPAddress split into source_ip/source_host; errorCode; awsRegion; userAgent.
* ``litellm``: api_key hash, metadata.user_api_key_alias, model, prompt/completion tokens,
  cache reads from metadata.additional_usage_values, startTime (naive = UTC),
  requester_ip_address (column or metadata), status/error_information, spend, and a
  fingerprint of ``messages`` or ``proxy_server_request.messages``. JSONL, JSON, CSV.
* ``anthropic-usage``: one event per bucket result; input = uncached + cache read +
  cache creation (5m + 1h), cached = cache read, requests = 0 (unknown), workspace.
* ``openai-usage``: one event per bucket result; num_model_requests, input (incl.
  cached), output, input_cached_tokens, project and user ids, unix bucket times.
* ``bedrock-invocation``: Bedrock ModelInvocationLog lines; key = identity.arn (no key id,
  no IP in these logs: join CloudTrail on event_id = requestId), token counts, operation,
  modelId, errorCode, fingerprint of inputBodyJson messages/prompt.
* ``generic``: CSV/JSONL through the ``[usage.generic]`` column mapping.

Streaming and memory: files are opened one at a time; gzip is detected by magic bytes and
decompressed as a stream. JSON is decoded one record at a time from a sliding buffer
(``importers/_jsonstream.py``: ``raw_decode`` over a window, so a 2 GB JSON array or a
CloudTrail ``{"Records": [...]}`` never sits in memory whole); CSV is read line by line.
Every record or line is capped at ``[usage] max-record-bytes``; larger ones become one
error row and are skipped in fixed chunks. Dedupe keeps an 8-byte digest per event id.
"""
