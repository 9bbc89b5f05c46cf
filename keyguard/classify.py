"""Provider/kind classifier: a table of key formats, plus walkers for JSON and .env values.

Classification is data. Each :class:`KeyFormat` row names the provider and kind, a
full-match regex for the token and, for formats with no distinctive prefix, a regex the
*field or variable name* must match (``MISTRAL_API_KEY``). Rows are tried in order and
the first full match wins, so put narrower shapes first. ``shape`` describes how to build
a random fake of the format for tests and the demo; a test proves every row's fake
classifies back to its own kind.

This module and :mod:`keyguard.fingerprint` are the only code that reads a secret. The
results (:class:`SecretMatch`) carry a fingerprint and public identifiers, never a value.
Kinds are API (baselines key on them): add a row or an alias, never rename one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from keyguard.fingerprint import Fingerprinter
from keyguard.model import UNKNOWN_KIND, UNKNOWN_PROVIDER, Fingerprint, Kind, Provider
from keyguard.secret import Secret

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ALNUM_DASH = ALNUM + "_-"
UPPER_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
HEX = "0123456789abcdef"
LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
B64 = ALNUM + "+/"
DIGITS = "0123456789"

#: One piece of a fake key: a literal, or (alphabet, length).
ShapePart = str | tuple[str, int]


@dataclass(frozen=True, slots=True)
class KeyFormat:
    """One recognisable credential format."""

    provider: str
    kind: str
    pattern: str  # full-match regex for the whole token
    shape: tuple[ShapePart, ...]  # how to build a fake (tests, demo)
    secret: bool = True  # False for public identifiers (Stripe publishable keys)
    name_hint: str | None = None  # regex the field/variable name must match (case-insensitive)
    description: str = ""


_OPENAI_BODY = "(?:[A-Za-z0-9_-]{58}T3BlbkFJ[A-Za-z0-9_-]{58}|[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{74})"

#: The format table. Order matters only where two shapes overlap: narrower first.
FORMATS: tuple[KeyFormat, ...] = (
    KeyFormat("anthropic", "anthropic-admin", r"sk-ant-admin01-[A-Za-z0-9_-]{93}AA",
              ("sk-ant-admin01-", (ALNUM_DASH, 93), "AA"), description="Anthropic Admin API key (org-wide)"),
    KeyFormat("anthropic", "anthropic-api", r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",
              ("sk-ant-api03-", (ALNUM_DASH, 93), "AA"), description="Anthropic API key (workspace)"),
    KeyFormat("anthropic", "anthropic-oauth", r"sk-ant-oat01-[A-Za-z0-9_-]{40,200}",
              ("sk-ant-oat01-", (ALNUM_DASH, 95)), description="Claude subscription OAuth token"),
    KeyFormat("anthropic", "anthropic-oauth-refresh", r"sk-ant-ort01-[A-Za-z0-9_-]{40,200}",
              ("sk-ant-ort01-", (ALNUM_DASH, 95)), description="Claude OAuth refresh token"),
    KeyFormat("openai", "openai-admin", rf"sk-admin-{_OPENAI_BODY}",
              ("sk-admin-", (ALNUM_DASH, 58), "T3BlbkFJ", (ALNUM_DASH, 58)), description="OpenAI Admin API key"),
    KeyFormat("openai", "openai-svcacct", rf"sk-svcacct-{_OPENAI_BODY}",
              ("sk-svcacct-", (ALNUM_DASH, 74), "T3BlbkFJ", (ALNUM_DASH, 74)), description="OpenAI service-account key"),
    KeyFormat("openai", "openai-project", rf"sk-proj-{_OPENAI_BODY}",
              ("sk-proj-", (ALNUM_DASH, 74), "T3BlbkFJ", (ALNUM_DASH, 74)), description="OpenAI project key"),
    KeyFormat("openai", "openai-legacy-user", r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
              ("sk-", (ALNUM, 20), "T3BlbkFJ", (ALNUM, 20)), description="OpenAI user-level key (pre-projects)"),
    KeyFormat("openrouter", "openrouter-api", r"sk-or-v1-[0-9a-f]{64}",
              ("sk-or-v1-", (HEX, 64)), description="OpenRouter API key"),
    KeyFormat("deepseek", "deepseek-api", r"sk-[a-z0-9]{32}", ("sk-", (LOWER_ALNUM, 32)),
              name_hint=r"deepseek", description="DeepSeek API key (needs a deepseek name)"),
    KeyFormat("aws", "aws-access-key", r"(?:AKIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}",
              ("AKIA", (UPPER_B32, 16)), secret=False,
              description="AWS access key id (long-term AKIA; ABIA/ACCA service and context ids)"),
    KeyFormat("aws", "aws-temporary-key", r"ASIA[A-Z2-7]{16}", ("ASIA", (UPPER_B32, 16)),
              secret=False, description="AWS STS temporary access key id"),
    KeyFormat("aws", "aws-bedrock-api-key", r"ABSK[A-Za-z0-9+/]{109,269}={0,2}",
              ("ABSK", (B64, 132)), description="Amazon Bedrock long-term API key"),
    KeyFormat("aws", "aws-bedrock-short-term", r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=]{20,4000}",
              ("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t", (B64, 200)), description="Amazon Bedrock short-term API key"),
    KeyFormat("aws", "aws-secret-key", r"[A-Za-z0-9+/]{40}", ((B64, 40),),
              name_hint=r"secret_?access_?key|secret_?key", description="AWS secret access key (by name)"),
    KeyFormat("github", "github-fine-grained-pat", r"github_pat_\w{82}",
              ("github_pat_", (ALNUM + "_", 82)), description="GitHub fine-grained PAT"),
    KeyFormat("github", "github-classic-pat", r"ghp_[0-9A-Za-z]{36,251}", ("ghp_", (ALNUM, 36)),
              description="GitHub classic PAT"),
    KeyFormat("github", "github-oauth", r"gho_[0-9A-Za-z]{36,251}", ("gho_", (ALNUM, 36)),
              description="GitHub OAuth token"),
    KeyFormat("github", "github-app-user", r"ghu_[0-9A-Za-z]{36,251}", ("ghu_", (ALNUM, 36)),
              description="GitHub App user-to-server token"),
    KeyFormat("github", "github-app-installation", r"ghs_[0-9A-Za-z]{36,251}", ("ghs_", (ALNUM, 36)),
              description="GitHub App installation token"),
    KeyFormat("github", "github-refresh", r"ghr_[0-9A-Za-z]{36,251}", ("ghr_", (ALNUM, 36)),
              description="GitHub refresh token"),
    KeyFormat("stripe", "stripe-secret", r"sk_(?:live|test|prod)_[A-Za-z0-9]{10,247}",
              ("sk_live_", (ALNUM, 99)), description="Stripe secret key (full access)"),
    KeyFormat("stripe", "stripe-restricted", r"rk_(?:live|test|prod)_[A-Za-z0-9]{10,247}",
              ("rk_live_", (ALNUM, 99)), description="Stripe restricted key"),
    KeyFormat("stripe", "stripe-publishable", r"pk_(?:live|test)_[A-Za-z0-9]{10,247}",
              ("pk_live_", (ALNUM, 99)), secret=False, description="Stripe publishable key (public)"),
    KeyFormat("slack", "slack-bot", r"xoxb-[0-9]{10,13}-[0-9]{10,13}[A-Za-z0-9-]*",
              ("xoxb-", (DIGITS, 12), "-", (DIGITS, 13), "-", (ALNUM, 24)), description="Slack bot token"),
    KeyFormat("slack", "slack-legacy-bot", r"xoxb-[0-9]{8,14}-[A-Za-z0-9]{18,26}",
              ("xoxb-", (DIGITS, 9), "-", (ALNUM, 24)), description="Slack legacy bot token"),
    KeyFormat("slack", "slack-legacy", r"xox[os]-[0-9]+-[0-9]+-[0-9]+-[a-fA-F0-9]+",
              ("xoxs-", (DIGITS, 10), "-", (DIGITS, 11), "-", (DIGITS, 12), "-", (HEX, 32)),
              description="Slack legacy user/workspace token (xoxo-, xoxs-)"),
    KeyFormat("slack", "slack-legacy-workspace", r"xox[ar]-(?:[0-9]-)?[0-9A-Za-z]{8,48}",
              ("xoxa-2-", (ALNUM, 32)), description="Slack legacy workspace app token (xoxa-, xoxr-)"),
    KeyFormat("slack", "slack-user", r"xoxp-(?:[0-9]{10,13}-){3}[A-Za-z0-9-]{28,34}",
              ("xoxp-", (DIGITS, 12), "-", (DIGITS, 12), "-", (DIGITS, 13), "-", (HEX, 32)), description="Slack user token"),
    KeyFormat("slack", "slack-app", r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",
              ("xapp-1-A", (UPPER_B32, 10), "-", (DIGITS, 13), "-", (HEX, 64)), description="Slack app-level token"),
    KeyFormat("slack", "slack-refresh", r"xoxe(?:\.xox[bp])?-\d-[A-Za-z0-9]{40,200}",
              ("xoxe.xoxp-1-", (ALNUM, 146)), description="Slack rotating/refresh token"),
    KeyFormat("slack", "slack-webhook", r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{20,30}",
              ("https://hooks.slack.com/services/T", (UPPER_B32, 10), "/B", (UPPER_B32, 10), "/", (ALNUM, 24)),
              description="Slack incoming webhook URL"),
    KeyFormat("google", "google-api", r"AIza[\w-]{35}", ("AIzaSy", (ALNUM_DASH, 33)),
              description="Google API key (incl. Gemini)"),
    KeyFormat("huggingface", "huggingface-user", r"hf_[A-Za-z0-9]{34}", ("hf_", (ALNUM, 34)),
              description="Hugging Face user access token"),
    KeyFormat("huggingface", "huggingface-org", r"api_org_[A-Za-z0-9]{34}", ("api_org_", (ALNUM, 34)),
              description="Hugging Face legacy org token"),
    KeyFormat("gitlab", "gitlab-pat", r"glpat-(?:[\w-]{20}|[\w-]{27,300}\.[\w-]{2}[\w-]{7})",
              ("glpat-", (ALNUM_DASH, 20)), description="GitLab personal access token"),
    KeyFormat("gitlab", "gitlab-deploy-token", r"gldt-[\w-]{20,}", ("gldt-", (ALNUM_DASH, 20)),
              description="GitLab deploy token"),
    KeyFormat("gitlab", "gitlab-runner-token", r"glrt-[\w.-]{20,}", ("glrt-", (ALNUM_DASH, 20)),
              description="GitLab runner token"),
    KeyFormat("gitlab", "gitlab-pipeline-trigger", r"glptt-[0-9a-f]{40}", ("glptt-", (HEX, 40)),
              description="GitLab pipeline trigger token"),
    KeyFormat("gitlab", "gitlab-ci-job-token", r"glcbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_-]{20}",
              ("glcbt-", (ALNUM, 2), "_", (ALNUM_DASH, 20)), description="GitLab CI/CD job token"),
    KeyFormat("gitlab", "gitlab-oauth-app-secret", r"gloas-[0-9A-Za-z_-]{64}",
              ("gloas-", (ALNUM_DASH, 64)), description="GitLab OAuth application secret"),
    KeyFormat("gitlab", "gitlab-scim-token", r"glsoat-[0-9A-Za-z_-]{20}", ("glsoat-", (ALNUM_DASH, 20)),
              description="GitLab SCIM OAuth access token"),
    KeyFormat("gitlab", "gitlab-feed-token", r"glft-[0-9A-Za-z_-]{20}", ("glft-", (ALNUM_DASH, 20)),
              description="GitLab feed token"),
    KeyFormat("gitlab", "gitlab-incoming-mail-token", r"glimt-[0-9A-Za-z_-]{25}",
              ("glimt-", (ALNUM_DASH, 25)), description="GitLab incoming mail token"),
    KeyFormat("gitlab", "gitlab-agent-token", r"glagent-[0-9A-Za-z_-]{50}", ("glagent-", (ALNUM_DASH, 50)),
              description="GitLab agent for Kubernetes token"),
    KeyFormat("gitlab", "gitlab-feature-flag-token", r"glffct-[0-9A-Za-z_-]{20}",
              ("glffct-", (ALNUM_DASH, 20)), description="GitLab feature flags client token"),
    KeyFormat("groq", "groq-api", r"gsk_[A-Za-z0-9]{48,56}", ("gsk_", (ALNUM, 52)),
              description="Groq API key"),
    KeyFormat("xai", "xai-api", r"xai-[0-9A-Za-z_]{80}", ("xai-", (ALNUM, 80)), description="xAI API key"),
    KeyFormat("sendgrid", "sendgrid-api", r"SG\.[\w-]{20,24}\.[\w-]{39,50}",
              ("SG.", (ALNUM_DASH, 22), ".", (ALNUM_DASH, 43)), description="SendGrid API key"),
    KeyFormat("npm", "npm-token", r"npm_[A-Za-z0-9]{36}", ("npm_", (ALNUM, 36)),
              description="npm access token"),
    KeyFormat("pypi", "pypi-token", r"pypi-AgEIcHlwaS5vcmc[\w-]{50,1000}",
              ("pypi-AgEIcHlwaS5vcmc", (ALNUM_DASH, 160)), description="PyPI API token (macaroon)"),
    KeyFormat("perplexity", "perplexity-api", r"pplx-[A-Za-z0-9]{48}", ("pplx-", (ALNUM, 48)),
              description="Perplexity API key"),
    KeyFormat("replicate", "replicate-api", r"r8_[A-Za-z0-9]{37}", ("r8_", (ALNUM, 37)),
              description="Replicate API token"),
    KeyFormat("twilio", "twilio-api-key", r"SK[0-9a-fA-F]{32}", ("SK", (HEX, 32)), secret=False,
              description="Twilio API key SID (pairs with a secret)"),
    KeyFormat("twilio", "twilio-account-sid", r"AC[0-9a-f]{32}", ("AC", (HEX, 32)), secret=False,
              description="Twilio account SID (public; pairs with an auth token)"),
    KeyFormat("mistral", "mistral-api", r"[A-Za-z0-9]{32}", ((ALNUM, 32),), name_hint=r"mistral",
              description="Mistral API key (needs a mistral name)"),
    KeyFormat("cohere", "cohere-api", r"[A-Za-z0-9]{40}", ((ALNUM, 40),), name_hint=r"cohere|co_api_key",
              description="Cohere API key (needs a cohere name)"),
)

#: Field/variable names that mark a value as a credential even when its format is unknown.
SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:api_?key|apikey|token|secret|password|passwd|pwd|credential|auth|private_?key|access_?key)s?(?:$|[_\-.])",
    re.IGNORECASE,
)
#: Names of the access-key-id half of an AWS credential pair (normalised: lowercase, alnum).
_AWS_ID_NAMES = frozenset({"awsaccesskeyid", "accesskeyid", "accesskey", "awsaccesskey", "keyid"})
_AWS_SECRET_NAMES = frozenset({"awssecretaccesskey", "secretaccesskey", "secretkey", "awssecretkey"})
# Longest first, so "secretaccesskey" wins over "accesskey" and "awsaccesskeyid" over "keyid".
_AWS_SECRET_SUFFIXES = tuple(sorted(_AWS_SECRET_NAMES, key=len, reverse=True))
_AWS_ID_SUFFIXES = tuple(sorted(_AWS_ID_NAMES, key=len, reverse=True))
_AWS_ID_KINDS = frozenset({"aws-access-key", "aws-temporary-key"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: Values that are obviously placeholders, not credentials.
_PLACEHOLDER = re.compile(r"^(?:|changeme|change-me|xxx+|\*+|<.*>|\$\{.*\}|your[-_].*|todo|none|null|example.*|dummy|test|redacted)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """A credential found inside a stored value: its classification, never the value."""

    provider: Provider
    kind: Kind
    fingerprint: Fingerprint
    field: str | None = None  # JSON field or .env variable that held it
    key_id: str | None = None  # public id (AWS access key id)
    line: int | None = None  # 1-based line in a text file
    #: Keyed fingerprints of the handles a provider shows for this value (see
    #: :func:`provider_handles`), so a stored copy can be joined with the provider's key
    #: list without keeping any part of the value.
    links: tuple[Fingerprint, ...] = ()


@cache
def _compiled() -> tuple[tuple[KeyFormat, re.Pattern[str], re.Pattern[str] | None], ...]:
    # NOTE: re.ASCII: in str patterns \w and \d are Unicode-aware by default, so
    # "AIza" + 35 Cyrillic letters would pass for a Google key. Every format is ASCII.
    return tuple(
        (f, re.compile(f.pattern, re.ASCII),
         re.compile(f.name_hint, re.IGNORECASE) if f.name_hint else None)
        for f in FORMATS
    )


def classify_token(token: str, name: str | None = None) -> KeyFormat | None:
    """Return the format a single token matches, or None.

    Formats with a ``name_hint`` match only when ``name`` (a field or variable name)
    matches it: a bare 32-character string is not guessed to be a Mistral key.
    """
    token = token.strip()
    if not token or len(token) > 8192:
        return None
    for fmt, pattern, hint in _compiled():
        if hint is not None and (name is None or not hint.search(name)):
            continue
        if pattern.fullmatch(token):
            return fmt
    return None


def format_by_kind(kind: str) -> KeyFormat | None:
    """The table row for a kind, if any."""
    return next((f for f in FORMATS if f.kind == kind), None)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def inspect_value(value: Secret, fingerprinter: Fingerprinter, name: str | None = None) -> list[SecretMatch]:
    """Classify and fingerprint every credential inside one stored value.

    The value may be a bare token, a JSON object (fields classified one by one, nested
    objects walked, an AWS id/secret pair joined into one ``aws-access-key`` match), or
    .env-style text. A value that is a secret but matches no known format is reported
    once as provider ``unknown`` with the fingerprint of the whole value.
    """
    text = value.reveal().strip()
    if not text:
        return []
    if text[:1] == "{":
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            # NOTE: deeply nested input ("{"a":" x 5000) exhausts the JSON decoder's
            # recursion limit; such a value is not a JSON secret, so carry on as text.
            parsed = None
        if isinstance(parsed, dict):
            matches = _from_fields(_flatten(parsed), fingerprinter)
            return matches or [_unknown(value, fingerprinter)]
    if "\n" in text and "=" in text:
        env_matches = list(scan_env_text(text, fingerprinter))
        if env_matches:
            return env_matches
    fmt = classify_token(text, name)
    if fmt is not None and fmt.kind in ("aws-access-key", "aws-temporary-key"):
        # A bare access key id is not a credential on its own; report it as a known id.
        return [SecretMatch(Provider(fmt.provider), Kind(fmt.kind), fingerprinter.fingerprint(value), key_id=text)]
    if fmt is not None:
        return [SecretMatch(Provider(fmt.provider), Kind(fmt.kind), fingerprinter.fingerprint(value),
                            links=links_of(text, fingerprinter))]
    return [_unknown(value, fingerprinter)]


def scan_env_text(text: str, fingerprinter: Fingerprinter) -> Iterator[SecretMatch]:
    """Yield credentials in ``NAME=value`` text (.env files), with 1-based line numbers.

    A variable counts when its value matches a known secret format, or when its name
    looks like a credential (``*_API_KEY``, ``*_TOKEN``...) and the value is not a
    placeholder; the latter are reported as provider ``unknown``.
    """
    fields: dict[str, tuple[str, int]] = {}
    # NOTE: not str.splitlines(): it also breaks at \f, \x1c-\x1e, \x85, \u2028... which
    # editors and grep don't count, so reported line numbers would drift. These are the
    # breaks Python's universal-newline file reading recognises.
    for lineno, raw in enumerate(_LINE_BREAK.split(text), start=1):
        parsed = parse_env_line(raw)
        if parsed is not None:
            fields[parsed[0]] = (parsed[1], lineno)
    yield from _from_fields(fields, fingerprinter, keep_unknown_named=True)


def parse_env_line(raw: str) -> tuple[str, str] | None:
    """Parse one ``[export] NAME=value`` line; None for comments, blanks and non-assignments."""
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("export "):
        line = line[len("export "):].lstrip()
    name, sep, rest = line.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
        return None
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = rest.find(quote, 1)
        rest = rest[1:end] if end > 0 else rest[1:]
    else:
        rest = rest.split(" #", 1)[0].strip()
    return name, rest


def _flatten(obj: Mapping[str, object], prefix: str = "", depth: int = 0) -> dict[str, tuple[str, int]]:
    """String leaves of a JSON object as ``{"a.b": (value, 0)}`` (bounded depth).

    Lists are walked too (``"keys[0].api_key"``), so a key inside an array of objects
    keeps its own classification instead of hiding in an unknown whole.
    """
    out: dict[str, tuple[str, int]] = {}
    if depth > 8:
        return out
    for key, val in obj.items():
        _leaves(val, f"{prefix}{key}", depth, out)
    return out


def _leaves(val: object, path: str, depth: int, out: dict[str, tuple[str, int]]) -> None:
    if isinstance(val, str):
        out[path] = (val, 0)
    elif isinstance(val, dict):
        out.update(_flatten(val, path + ".", depth + 1))
    elif isinstance(val, list) and depth < 8:
        for i, item in enumerate(val):
            _leaves(item, f"{path}[{i}]", depth + 1, out)


def _from_fields(
    fields: Mapping[str, tuple[str, int]], fp: Fingerprinter, keep_unknown_named: bool = False
) -> list[SecretMatch]:
    matches: list[SecretMatch] = []
    # NOTE: a field joins an AWS pair only when its value has the AWS shape as well as an
    # AWS-like name: Django's SECRET_KEY is not an AWS secret, and a non-id value in an
    # "access_key" field must not be copied into key_id (it is reported, never a secret).
    roles = {n: role for n in fields if (role := _aws_role(n)) is not None}
    aws_ids = {n: v.strip() for n, (v, _line) in fields.items()
               if roles.get(n, ("", ""))[0] == "id" and _aws_id_kind(v.strip()) is not None}
    aws_secret_names = [n for n, (v, _line) in fields.items()
                        if roles.get(n, ("", ""))[0] == "secret"
                        and (_aws_secret_shape(v.strip()) or _PLACEHOLDER.match(v.strip()))]
    paired_ids: set[str] = set()
    for secret_name in aws_secret_names:
        sval, sline = fields[secret_name]
        if _PLACEHOLDER.match(sval.strip()):
            continue
        group = roles[secret_name][1]
        id_name = next((n for n in aws_ids if roles[n][1] == group and n not in paired_ids), None)
        key_id = aws_ids[id_name] if id_name else None
        if id_name:
            paired_ids.add(id_name)
        kind = (_aws_id_kind(key_id) if key_id else None) or "aws-access-key"
        matches.append(SecretMatch(Provider("aws"), Kind(kind),
                                   fp.fingerprint(Secret(sval)), field=secret_name, key_id=key_id,
                                   line=sline or None))
    for fname, (fval, fline) in fields.items():
        if fname in paired_ids or fname in aws_secret_names:
            continue
        fmt = classify_token(fval, fname)
        if fmt is not None and fmt.secret:
            matches.append(SecretMatch(Provider(fmt.provider), Kind(fmt.kind),
                                       fp.fingerprint(Secret(fval)), field=fname, line=fline or None,
                                       links=links_of(fval.strip(), fp)))
        elif (fmt is None and _secret_name(fname) and not _PLACEHOLDER.match(fval.strip())
              and (keep_unknown_named or len(fval.strip()) >= 8)):
            matches.append(SecretMatch(UNKNOWN_PROVIDER, UNKNOWN_KIND, fp.fingerprint(Secret(fval)),
                                       field=fname, line=fline or None,
                                       links=links_of(fval.strip(), fp)))
    return matches


def _secret_name(name: str) -> bool:
    """Whether a field name looks like a credential, in snake, kebab, dotted or camel case."""
    # NOTE: SECRET_NAME needs a separator around the keyword; JSON secrets often use
    # camelCase (clientSecret, SessionToken, dbPassword), so split those words first.
    return SECRET_NAME.search(_CAMEL_BOUNDARY.sub("_", name)) is not None


def _aws_role(name: str) -> tuple[str, str] | None:
    """("secret" | "id", group) for AWS credential field names, else None.

    Matching is by suffix of the normalised leaf name, so ``PROD_AWS_SECRET_ACCESS_KEY``
    pairs with ``PROD_AWS_ACCESS_KEY_ID`` (group "prod") and not with ``DEV_...``.
    """
    leaf = _norm(_leaf(name))
    for role, names in (("secret", _AWS_SECRET_SUFFIXES), ("id", _AWS_ID_SUFFIXES)):
        for suffix in names:
            if leaf.endswith(suffix):
                return role, f"{_parent(name)}/{leaf[: -len(suffix)].removesuffix('aws')}"
    return None


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _aws_id_kind(value: str) -> str | None:
    """``aws-access-key`` or ``aws-temporary-key`` when ``value`` is an AWS access key id."""
    fmt = classify_token(value)
    return fmt.kind if fmt is not None and fmt.kind in _AWS_ID_KINDS else None


def _aws_secret_shape(value: str) -> bool:
    return any(f.kind == "aws-secret-key" and p.fullmatch(value) for f, p, _hint in _compiled())


def _unknown(value: Secret, fp: Fingerprinter) -> SecretMatch:
    return SecretMatch(UNKNOWN_PROVIDER, UNKNOWN_KIND, fp.fingerprint(value),
                       links=links_of(value.reveal().strip(), fp))


def provider_handles(value: str) -> list[str]:
    """The non-secret handles provider admin APIs show for a full key value.

    Anthropic lists ``partial_key_hint`` (first 16 + ``...`` + last 4 characters); OpenAI
    lists ``redacted_value`` (assumed first 6 + ``...`` + last 4: the masking rule is not
    documented, provider-formats.md §2.3 [GAP]); LiteLLM identifies a virtual key by the
    SHA-256 hex of the key (its ``token``). keyguard never stores these handles, only their
    keyed fingerprints (:func:`links_of`), which provider sources compute from the API's
    side of the same handle.
    """
    if not value.startswith("sk-") or len(value) < 24:
        return []
    out = [hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()]
    if value.startswith("sk-ant-"):
        out.append(f"{value[:16]}...{value[-4:]}")
    else:
        out.append(f"{value[:6]}...{value[-4:]}")
    return out


def links_of(value: str, fp: Fingerprinter) -> tuple[Fingerprint, ...]:
    """Keyed fingerprints of :func:`provider_handles` (empty for values no provider lists)."""
    return tuple(fp.fingerprint(Secret(handle)) for handle in provider_handles(value))
