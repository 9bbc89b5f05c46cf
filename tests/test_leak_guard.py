"""Secret-leak guard (issue 8): no planted value, nor any 12-character slice of one, escapes.

One world is built once: known values planted in every source keyguard reads (moto Secrets
Manager plain/JSON/binary, SSM SecureString, IAM access keys, an OpenBao KV v2 mount, the
private gnome-keyring, a .env file), provider admin-API fakes that answer with a full key in
fields that should never hold one (a key's name, its partial hint, its redacted value, an
alias), a LiteLLM usage export with raw keys as key id, alias, user agent, user and prompt,
and keyguard's own credentials (admin keys, Vault token, master key, webhook token).

Every command then runs, in every output format, with ``-vv`` debug logging, on success
paths and error paths (bad config, a wrong-type value, unreachable endpoints, access denied,
wrong admin keys echoed back by the API, a rotation rolled back by its hook, a tampered
plan file). Each case scans its stdout, stderr, exception and report file; the last case
scans everything at rest: every file under the data dir (state database with WAL/SHM,
DuckDB usage store, rotation journal, plan, locks, notify ledger), every report written,
and every webhook body received. The check is :func:`tests.leakcheck.find_leaks`.

Cases run in order against the shared world (later ones read the state earlier ones
wrote); test ids read ``command-format-path``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import secrets
import traceback
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import freezegun
import keyring
import pytest
import secretstorage
from typer.testing import CliRunner, Result

from keyguard.cli import app
from keyguard.fakes import fake_key
from keyguard.fingerprint import KEYRING_SERVICE, KEYRING_USERNAME
from keyguard.sandbox import CLEARED_ENV, sandbox_env
from tests.fakes.anthropic_api import FakeAnthropicApi, SeededKey, seed_keys
from tests.fakes.litellm_api import FakeLiteLLMApi
from tests.fakes.litellm_api import seed as seed_litellm
from tests.fakes.openai_api import FakeOpenAIApi
from tests.fakes.openai_api import seed as seed_openai
from tests.fixtures.aws import enforced_auth
from tests.fixtures.keyring_service import KeyringService, _backend
from tests.fixtures.vault import VaultServer, free_port
from tests.leakcheck import Leak, find_leaks
from tests.rotation import world as rotation_world
from tests.usage.webhook_server import Webhook, webhook_server

rotation_moto = rotation_world.rotation_moto  # a moto process of our own (real clock)

REGION = rotation_world.REGION
MOUNT = "kg-leak"
NOW = datetime.now(UTC).replace(microsecond=0)
ALL_SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam", "dotenv", "vault", "keyring",
               "anthropic", "openai", "litellm")


class LeakyAnthropicKey(SeededKey):
    """An Anthropic key whose API answer carries its own secret as name and hint."""

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        body["name"] = self.value
        body["partial_key_hint"] = self.value
        return body


@dataclass
class World:
    """Everything a case needs: paths, the environment, planted values, the receivers."""

    home: Path
    work: Path
    reports: Path  # what keyguard wrote (-o, --out): scanned at rest
    env: dict[str, str]
    planted: dict[str, str]
    hook: Webhook
    keyring: KeyringService
    rotation_user: rotation_world.User
    rollback_user: rotation_world.User
    endpoint: str
    anthropic: FakeAnthropicApi
    openai: FakeOpenAIApi
    litellm: FakeLiteLLMApi
    vault: VaultServer
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> Path:
        """Files the cases write for keyguard to read (configs, tampered plans): not scanned."""
        path = self.work / "inputs"
        path.mkdir(exist_ok=True)
        return path

    @property
    def data(self) -> Path:
        """keyguard's data dir: state database, usage store, journal, locks, ledger."""
        return self.home / "data"


@dataclass
class Run:
    """What one CLI run left behind, to scan: its streams, exception and report file."""

    result: Result
    report: Path | None = None
    more_stderr: str = ""  # stderr of a second run of the same case (to a file)

    def texts(self) -> list[tuple[str, str | bytes | Path]]:
        out: list[tuple[str, str | bytes | Path]] = [
            ("stdout", self.result.stdout), ("stderr", self.result.stderr + self.more_stderr)]
        if self.result.exc_info is not None and not isinstance(self.result.exception, SystemExit):
            out.append(("exception", "".join(traceback.format_exception(*self.result.exc_info))))
        if self.report is not None and self.report.exists():
            out.append(("report", self.report))
        return out


def _put(rng: random.Random, kind: str, planted: dict[str, str], label: str) -> str:
    value = fake_key(kind, rng)
    planted[label] = value
    return value


def _seed_aws(endpoint: str, rng: random.Random, planted: dict[str, str]
              ) -> tuple[rotation_world.User, rotation_world.User]:
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(reset, timeout=10):  # noqa: S310  (loopback moto)
        pass
    sm = boto3.client("secretsmanager")
    ssm = boto3.client("ssm")
    sm.create_secret(Name="leak/prod/anthropic",
                     SecretString=_put(rng, "anthropic-api", planted, "sm-plain"),
                     # a key pasted into a tag and the description: unexpected fields
                     Description=f"rotated {_put(rng, 'xai-api', planted, 'sm-description')}",
                     Tags=[{"Key": "owner", "Value": "payments"},
                           {"Key": "old-key", "Value": _put(rng, "groq-api", planted, "sm-tag")}])
    sm.create_secret(Name="leak/prod/service", SecretString=json.dumps({
        "api_key": _put(rng, "openai-project", planted, "sm-json-api-key"),
        "db": {"password": _put(rng, "stripe-secret", planted, "sm-json-nested")},
        "port": 5432}))
    # a wrong-type value: binary, not a string
    sm.create_secret(Name="leak/prod/binary",
                     SecretBinary=_put(rng, "github-classic-pat", planted, "sm-binary").encode())
    ssm.put_parameter(Name="/leak/prod/github_token", Type="SecureString",
                      Value=_put(rng, "github-fine-grained-pat", planted, "ssm-secure"),
                      Description=f"was {_put(rng, 'perplexity-api', planted, 'ssm-description')}",
                      Tags=[{"Key": "note", "Value": _put(rng, "replicate-api", planted, "ssm-tag")}])
    ssm.put_parameter(Name="/leak/prod/slack", Type="String",
                      Value=_put(rng, "huggingface-user", planted, "ssm-string"))
    user = rotation_world.make_user("leak-rot", [("sm", "json"), ("ssm", "plain")])
    rollback = rotation_world.make_user("leak-rb", [("sm", "env")])
    planted["iam-rotated-old"] = user.old_secret
    planted["iam-rollback"] = rollback.old_secret
    return user, rollback


def _seed_vault(server: VaultServer, rng: random.Random, planted: dict[str, str],
                rotated: rotation_world.User) -> None:
    client = server.client()
    if f"{MOUNT}/" not in client.sys.list_mounted_secrets_engines()["data"]:  # type: ignore[no-untyped-call]
        client.sys.enable_secrets_engine("kv", path=MOUNT, options={"version": "2"})
    kv = client.secrets.kv.v2
    kv.create_or_update_secret(mount_point=MOUNT, path="prod/payments", secret={
        "stripe_key": _put(rng, "stripe-secret", planted, "vault-kv"), "owner": "payments"})
    kv.create_or_update_secret(mount_point=MOUNT, path="prod/odd", secret={  # wrong types
        "retries": 3, "nested": {"token": _put(rng, "gitlab-pat", planted, "vault-nested")},
        "list": [_put(rng, "npm-token", planted, "vault-list")]})
    # a third copy of the key the rotation cases rotate: the vault store writes it too
    kv.create_or_update_secret(mount_point=MOUNT, path="prod/rot-creds", secret={
        "aws_access_key_id": rotated.old_id, "aws_secret_access_key": rotated.old_secret})
    planted["vault-root-token"] = server.root_token


def _seed_keyring(service: KeyringService, rng: random.Random, planted: dict[str, str]) -> None:
    service.unlock()
    service.clear()
    with service.connection() as conn:
        collection = secretstorage.Collection(conn)
        collection.create_item("openai-prod", {"service": "openai", "username": "prod"},
                               _put(rng, "openai-svcacct", planted, "keyring-item").encode())
        # a secret as the item's label: an unexpected field
        leaky = _put(rng, "groq-api", planted, "keyring-label")
        collection.create_item(leaky, {"service": "groq", "username": "ci"},
                               _put(rng, "groq-api", planted, "keyring-item2").encode())


def _providers(rng: random.Random, planted: dict[str, str], stack: contextlib.ExitStack
               ) -> tuple[FakeAnthropicApi, FakeOpenAIApi, FakeLiteLLMApi]:
    keys = seed_keys(4, rng, NOW)
    keys.append(LeakyAnthropicKey(
        id="apikey_leak0001", name="ignored", value=_put(rng, "anthropic-api", planted,
                                                         "anthropic-name-hint"),
        status="active", created=NOW - timedelta(days=200), creator="user_0001",
        workspace="wrkspc_0001", generation="newer"))
    anthropic = FakeAnthropicApi(_put(rng, "anthropic-admin", planted, "anthropic-admin"), keys)
    admin, projects = seed_openai(rng, NOW)
    leaked = _put(rng, "openai-project", planted, "openai-name-redacted")
    projects[1].keys[0]["name"] = leaked
    projects[1].keys[0]["redacted_value"] = leaked
    openai = FakeOpenAIApi(_put(rng, "openai-admin", planted, "openai-admin"), admin, projects)
    rows, values = seed_litellm(5, rng, NOW)
    for n, value in enumerate(values.values()):
        planted[f"litellm-virtual-{n}"] = value
    alias = "sk-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))
    planted["litellm-alias"] = alias
    rows[0].update(key_alias=alias, key_name=alias, metadata={"note": f"key is {alias}"})
    master = "sk-master-" + secrets.token_hex(16)
    planted["litellm-master"] = master
    litellm = FakeLiteLLMApi(master, rows, values)
    for api in (anthropic, openai, litellm):
        stack.enter_context(api.running())
    return anthropic, openai, litellm


def _usage_export(path: Path, rng: random.Random, planted: dict[str, str]) -> None:
    raw = _put(rng, "anthropic-api", planted, "usage-key-id")
    alias = _put(rng, "openai-project", planted, "usage-alias")
    agent = _put(rng, "github-classic-pat", planted, "usage-agent")
    prompt = _put(rng, "stripe-secret", planted, "usage-prompt")
    user = _put(rng, "huggingface-user", planted, "usage-user")
    start = datetime(2026, 2, 2, 9, tzinfo=UTC)
    rows = [json.dumps({
        "request_id": f"req-{n}", "call_type": "acompletion",
        "api_key": raw if n % 2 else hashlib.sha256(raw.encode()).hexdigest(),
        "startTime": (start + timedelta(hours=n)).isoformat().replace("+00:00", ""),
        "model": "claude-sonnet", "prompt_tokens": 100, "completion_tokens": 20,
        "total_tokens": 120, "requester_ip_address": "3.3.3.3" if n % 3 else "81.2.69.142",
        "metadata": {"user_api_key_alias": alias, "user_api_key_user_id": f"ci {user}"},
        "messages": [{"role": "user", "content": f"use the key {prompt} to call the API"}],
        "proxy_server_request": {"headers": {"user-agent": f"bot/{agent}"}},
    }) for n in range(30)]
    generic = ["ts,key,alias,agent,who,ip"]
    generic += [f"2026-02-0{1 + n % 5}T10:00:00Z,{raw},{alias},curl/{agent},{user},3.3.3.{n}"
                for n in range(12)]
    path.with_name("generic.csv").write_text("\n".join(generic) + "\n", encoding="utf-8")
    _provider_exports(path.parent / "exports", rng, planted)
    # the same rows without the broken ones: the DuckDB bulk path loads this file
    path.with_name("spend-clean.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # broken rows whose text is a key: error samples must not quote it
    bad = _put(rng, "anthropic-api", planted, "usage-bad-row")
    rows.append('{"api_key": "' + bad + '", "startTime": ')
    rows.append(bad)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _provider_exports(folder: Path, rng: random.Random, planted: dict[str, str]) -> None:
    """CloudTrail, Bedrock, Anthropic and OpenAI usage exports with keys in odd fields."""
    folder.mkdir()
    agent = _put(rng, "anthropic-api", planted, "cloudtrail-agent")
    param = _put(rng, "stripe-secret", planted, "cloudtrail-param")
    error = _put(rng, "github-classic-pat", planted, "cloudtrail-error")
    trail = [{
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEID0000000",
                         "arn": "arn:aws:iam::111122223333:user/ci-bot", "userName": "ci-bot",
                         "accountId": "111122223333", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
        "eventTime": f"2026-02-0{1 + n % 5}T12:31:07Z", "eventSource": "bedrock.amazonaws.com",
        "eventName": "InvokeModel", "awsRegion": "us-east-1", "sourceIPAddress": "81.2.69.142",
        "userAgent": f"app/1.0 token={agent}", "requestParameters": {"note": param},
        "errorCode": "AccessDenied", "errorMessage": f"bad key {error}",
        "responseElements": None, "requestID": f"r{n}", "eventID": f"e{n}", "readOnly": True,
        "eventType": "AwsApiCall", "managementEvent": False,
        "recipientAccountId": "111122223333"} for n in range(6)]
    (folder / "cloudtrail.json").write_text(json.dumps({"Records": trail}), encoding="utf-8")
    prompt = _put(rng, "openai-project", planted, "bedrock-prompt")
    bedrock = [json.dumps({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": f"2026-02-0{1 + n % 5}T12:00:00Z", "accountId": "111122223333",
        "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/app/i-0abc"},
        "region": "us-east-1", "requestId": f"b{n}", "operation": "Converse",
        "modelId": "anthropic.claude-sonnet-4-20250514-v1:0",
        "input": {"inputContentType": "application/json", "inputTokenCount": 1500,
                  "inputBodyJson": {"messages": [{"role": "user", "content": [
                      {"text": f"call it with {prompt}"}]}]}},
        "output": {"outputContentType": "application/json", "outputTokenCount": 500,
                   "outputBodyJson": {"output": {"message": {"content": [
                       {"text": f"sure: {prompt}"}]}}}}}) for n in range(6)]
    (folder / "bedrock.jsonl").write_text("\n".join(bedrock) + "\n", encoding="utf-8")
    anthropic_key = _put(rng, "anthropic-api", planted, "anthropic-usage-key-id")
    (folder / "anthropic-usage.json").write_text(json.dumps({"data": [{
        "starting_at": f"2026-02-0{d}T13:00:00Z", "ending_at": f"2026-02-0{d}T14:00:00Z",
        "results": [{"api_key_id": anthropic_key, "workspace_id": None,
                     "model": "claude-sonnet-4-20250514", "service_tier": "standard",
                     "context_window": "0-200k", "uncached_input_tokens": 1520,
                     "cache_read_input_tokens": 0, "output_tokens": 812}]}
        for d in range(1, 6)], "has_more": False, "next_page": None}), encoding="utf-8")
    openai_key = _put(rng, "openai-svcacct", planted, "openai-usage-key-id")
    openai_user = _put(rng, "huggingface-user", planted, "openai-usage-user")
    (folder / "openai-usage.json").write_text(json.dumps({"object": "page", "data": [{
        "object": "bucket", "start_time": 1769904000 + d * 86400,
        "end_time": 1769990400 + d * 86400, "results": [{
            "object": "organization.usage.completions.result", "input_tokens": 1000,
            "output_tokens": 500, "input_cached_tokens": 0, "num_model_requests": 5,
            "project_id": "proj_abc", "user_id": openai_user, "api_key_id": openai_key,
            "model": "gpt-4o-mini-2024-07-18", "batch": False}]} for d in range(5)],
        "has_more": False, "next_page": None}), encoding="utf-8")


CONFIG = """\
default_sources = {sources}
[aws]
regions = ["{region}"]
max_attempts = 1
[sources.dotenv]
paths = ["app"]
[sources.vault]
mounts = ["{mount}"]
[sources.keyring]
enumerate = true
[sources.anthropic]
max-retries = 1
[sources.openai]
max-retries = 1
[sources.litellm]
max-retries = 1
[usage]
bulk_min_mb = 0                    # every LiteLLM JSONL tries the bulk path (spend.jsonl declines)
[usage.generic]
time = "ts"
key = "key"
key_alias = "alias"
user_agent = "agent"
principal = "who"
ip = "ip"
"""


@pytest.fixture(scope="session")
def leak_world(rotation_moto: str, vault_server: VaultServer, keyring_service: KeyringService,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Plant known values in every source, once per session (see the module docstring)."""
    rng = random.Random(8008)
    root = tmp_path_factory.mktemp("leak")
    home, work, reports = root / "home", root / "work", root / "reports"
    for path in (home, work / "app", reports):
        path.mkdir(parents=True)
    empty = root / "aws-empty"
    empty.touch()
    planted: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        hook = stack.enter_context(webhook_server())
        anthropic, openai, litellm = _providers(rng, planted, stack)
        env = {**sandbox_env(rotation_moto, REGION),
               "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
               "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
               "XDG_CONFIG_HOME": str(home / "config"),
               "VAULT_ADDR": vault_server.address, "VAULT_TOKEN": vault_server.root_token,
               "ANTHROPIC_ADMIN_KEY": anthropic.admin_key, "ANTHROPIC_BASE_URL": anthropic.url,
               "OPENAI_ADMIN_KEY": openai.admin_key, "OPENAI_BASE_URL": openai.url + "/v1",
               "LITELLM_MASTER_KEY": litellm.master_key, "LITELLM_BASE_URL": litellm.url}
        # the webhook URL's path is a credential (Slack's is); it must not be printed either
        planted["webhook-path"] = hook.url().rsplit("/", 1)[-1] + "-and-more-of-it"
        env["KG_LEAK_HOOK"] = hook.url("/hooks/" + planted["webhook-path"])
        with pytest.MonkeyPatch.context() as mp:
            for var in CLEARED_ENV:
                mp.delenv(var, raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            user, rollback = _seed_aws(rotation_moto, rng, planted)
        _seed_vault(vault_server, rng, planted, user)
        _seed_keyring(keyring_service, rng, planted)
        (work / "app" / ".env").write_text(
            f"ANTHROPIC_ADMIN_KEY={_put(rng, 'anthropic-admin', planted, 'dotenv-plain')}\n"
            f"export SLACK_TOKEN=\"{_put(rng, 'slack-bot', planted, 'dotenv-quoted')}\"\n"
            f"DATABASE_URL=postgres://app:{_put(rng, 'npm-token', planted, 'dotenv-url')}"
            "@db.internal:5432/app\n", encoding="utf-8")
        (work / "keyguard.toml").write_text(CONFIG.format(
            sources=json.dumps(list(ALL_SOURCES)), region=REGION, mount=MOUNT), encoding="utf-8")
        _usage_export(work / "spend.jsonl", rng, planted)
        yield World(home, work, reports, env, planted, hook, keyring_service, user, rollback,
                    rotation_moto, anthropic, openai, litellm, vault_server)
        # the servers are the session's: leave them as other tests expect to find them
        keyring_service.clear()
        vault_server.client().sys.disable_secrets_engine(MOUNT)  # type: ignore[no-untyped-call]


@pytest.fixture
def world(leak_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The session world's environment, cwd and keyring backend, for one case."""
    for var in CLEARED_ENV:
        monkeypatch.delenv(var, raising=False)
    for var in ("KEYGUARD_CONFIG", "NO_COLOR", "KEYGUARD_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    for name, value in leak_world.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(leak_world.work)
    leak_world.keyring.unlock()
    with _backend(monkeypatch, leak_world.keyring.env):
        # keyguard's own fingerprint key (HMAC), once a first run has put it in the keyring
        fingerprint_key = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
        if fingerprint_key:
            leak_world.planted["fingerprint-key"] = fingerprint_key
        yield leak_world


def invoke(args: list[str], input: str | None = None, at: datetime | None = None) -> Result:
    """Run keyguard in-process with debug logging (and the clock at ``at``, if given)."""
    runner = CliRunner()
    with freezegun.freeze_time(at, tick=True) if at else contextlib.nullcontext():
        return runner.invoke(app, ["-vv", *args], prog_name="keyguard", input=input)


def sources(*names: str) -> list[str]:
    return [arg for name in names or ALL_SOURCES for arg in ("--source", name)]


# -- cases -------------------------------------------------------------------------------------
# Each case runs one command and returns what it left; ``ok`` is the set of exit codes the
# path should end in (a leak guard that passes because the command crashed early proves
# nothing, so every case pins its outcome).


@dataclass(frozen=True)
class Case:
    """One command x format x path."""

    id: str
    run: Callable[[World], Run]
    ok: frozenset[int]
    expect: str = ""  # text stdout+stderr must contain (proves the path was really taken)


CASES: list[Case] = []


def case(id: str, ok: set[int], expect: str = "") -> Callable[[Callable[[World], Run]],
                                                             Callable[[World], Run]]:
    def register(fn: Callable[[World], Run]) -> Callable[[World], Run]:
        CASES.append(Case(id, fn, frozenset(ok), expect))
        return fn
    return register


def _report_case(command: list[str], fmt: str, ok: set[int], expect: str = "",
                 extra: tuple[str, ...] = (), to_file: bool = False,
                 name: str | None = None) -> None:
    """One format of one command, to stdout or (``to_file``) to a ``-o`` report file."""
    words = []
    for word in command:
        if word.startswith("-"):
            break
        words.append(word.split(".")[0])
    words += [w.removeprefix("--") for w in command if w in ("--diff", "--yes")]
    name = name or "-".join(words)
    target = "file" if to_file else "stdout"

    def run(w: World) -> Run:
        report = w.reports / f"{name}.{fmt}"
        output = ["-o", str(report)] if to_file else []
        args = [a.format(reports=w.reports, hook=w.env["KG_LEAK_HOOK"]) for a in extra]
        return Run(invoke([*command, "-f", fmt, *args, *output]), report if to_file else None)

    CASES.append(Case(f"{name}-{fmt}-{target}", run, frozenset(ok), expect))


for _fmt in ("table", "json", "csv"):
    _report_case(["inventory", *sources(), "--inspect-values"], _fmt, {0}, "vault",
                 to_file=_fmt == "json")
_report_case(["inventory", *sources(), "--inspect-values", "--diff"], "json", {0})
for _fmt in ("table", "json", "sarif", "junit", "markdown", "ocsf", "csv"):
    _report_case(["check", *sources(), "--inspect-values"], _fmt, {1},
                 to_file=_fmt in ("sarif", "junit"))
for _fmt in ("table", "json"):
    _report_case(["rules"], _fmt, {0}, to_file=_fmt == "json")
    _report_case(["plugins"], _fmt, {0}, to_file=_fmt == "json")


@case("inventory-table-vvv-http-logs", {0}, "INFO: botocore")
def _very_verbose(w: World) -> Run:
    # -vvv lets botocore, urllib3 and hvac log at INFO; KEYGUARD_LOG_LEVEL=DEBUG on top
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEYGUARD_LOG_LEVEL", "DEBUG")
        return Run(invoke(["-v", "inventory", *sources("aws-secretsmanager", "aws-ssm", "vault",
                                                       "litellm"),
                           "--inspect-values", "--no-record"]))


@case("check-baseline-json-update", {0}, "baseline")
def _baseline(w: World) -> Run:
    path = w.reports / "baseline.json"
    result = invoke(["check", *sources(), "--inspect-values", "--baseline", str(path),
                     "--update-baseline", "-f", "json"])
    return Run(result, path)


for _fmt in ("table", "json", "sarif", "csv"):
    _report_case(["usage", "scan", "spend.jsonl", "--canary", "leak-canary-alias",
                  "--allow-country", "DE"], _fmt, {1, 3}, "",
                 # the webhook URL in argv once, by reference otherwise
                 ("--notify", "{hook}" if _fmt == "csv" else "env:KG_LEAK_HOOK"),
                 to_file=_fmt in ("json", "sarif"))


for _fmt in ("table", "json"):
    _report_case(["usage", "scan", "generic.csv", "--input-format", "generic"], _fmt, {1},
                 "12 event(s)", ("--state", "{reports}/generic-usage", "--allow-country", "DE",
                  "--since", "2026-01-01"),
                 to_file=_fmt == "json")


for _fmt in ("table", "json", "sarif", "csv"):
    _report_case(["usage", "scan", "exports/cloudtrail.json", "exports/bedrock.jsonl",
                  "exports/anthropic-usage.json", "exports/openai-usage.json"], _fmt, {0, 1, 3},
                 "event(s) from 4 file(s)",
                 ("--state", "{reports}/exports-usage", "--allow-country", "US",
                  "--since", "2026-01-01", "--notify", "env:KG_LEAK_HOOK"),
                 to_file=_fmt == "sarif", name="usage-scan-exports")


for _fmt in ("table", "json"):
    # loaded by DuckDB in bulk: keys as key id, alias, agent, user and in prompts
    _report_case(["usage", "scan", "spend-clean.jsonl", "--since", "2026-02-01"], _fmt, {0, 1},
                 "loaded by DuckDB: 30 rows", ("--state", "{reports}/bulk-usage", "--allow-country", "DE"),
                 to_file=_fmt == "json", name="usage-scan-bulk")


@case("usage-scan-json-raw-key-as-canary", {1}, '"type": "canary"')
def _raw_canary(w: World) -> Run:
    # a user who passes the raw key itself as --canary: it is matched through its SHA-256
    # (what the store keeps) and alerts (exit 1), but the raw key is never echoed
    return Run(invoke(["usage", "scan", "spend.jsonl", "--since", "2026-02-01", "-f", "json",
                       "--canary", w.planted["usage-key-id"],
                       "--state", str(w.reports / "raw-canary")]))


@case("usage-scan-json-strict", {3})
def _usage_strict(w: World) -> Run:
    return Run(invoke(["usage", "scan", "spend.jsonl", "--strict", "-f", "json",
                       "--state", str(w.reports / "strict-usage")]))


@case("usage-scan-table-notify-value-is-a-key", {2})
def _notify_is_a_key(w: World) -> Run:
    return Run(invoke(["usage", "scan", "spend.jsonl", "--notify", w.planted["usage-key-id"]]))


@case("auth-set-table-ok", {0})
def _auth_set(w: World) -> Run:
    return Run(invoke(["auth", "set", "leak-admin"], input=w.planted["anthropic-admin"] + "\n"))


@case("auth-get-table-ok", {0}, "sk-a")
def _auth_get(w: World) -> Run:
    return Run(invoke(["auth", "get", "leak-admin"]))


@case("auth-get-table-reveal-refused", {2})
def _auth_reveal(w: World) -> Run:
    return Run(invoke(["auth", "get", "leak-admin", "--reveal"]))


@case("auth-list-table-ok", {0}, "leak-admin")
def _auth_list(w: World) -> Run:
    return Run(invoke(["auth", "list"]))


@case("inventory-json-admin-key-from-keyring", {0}, "anthropic")
def _keyring_ref(w: World) -> Run:
    config = w.inputs / "keyring-ref.toml"
    config.write_text('[sources.anthropic]\nadmin_key = "keyring:leak-admin"\n', encoding="utf-8")
    return Run(invoke(["--config", str(config), "inventory", *sources("anthropic"), "-f", "json",
                       "--no-record"]))


@case("auth-delete-table-ok", {0})
def _auth_delete(w: World) -> Run:
    return Run(invoke(["auth", "delete", "leak-admin"]))


@case("canary-create-aws-table-ok", {0}, "canary cn-")
def _canary_create(w: World) -> Run:
    (w.work / "canary").mkdir(exist_ok=True)
    result = invoke(["canary", "create", "aws", "--name", "billing-export-svc",
                     "--plant", "file:canary/.env", "--plant", "ssm:/billing/prod/aws",
                     "--plant", f"vault:{MOUNT}/prod/billing-export"])
    planted = w.work / "canary" / ".env"
    if planted.exists():  # the canary's secret is only known once planted: guard it too
        for line in planted.read_text(encoding="utf-8").splitlines():
            if line.startswith("AWS_SECRET_ACCESS_KEY="):
                w.planted["canary-secret"] = line.split("=", 1)[1].strip().strip('"')
    assert "canary-secret" in w.planted, result.stdout + result.stderr
    return Run(result)


@case("canary-register-table-ok", {0})
def _canary_register(w: World) -> Run:
    # the Anthropic key whose admin-API record carries its own secret as name and hint
    return Run(invoke(["canary", "register", "anthropic", "apikey_leak0001",
                       "--name", "summarizer-ci"]))


for _fmt in ("table", "json"):
    _report_case(["canary", "list"], _fmt, {0}, "billing-export-svc", to_file=_fmt == "json")
    _report_case(["canary", "check", "--usage", "spend.jsonl"], _fmt, {0, 1, 3}, "",
                 ("--notify", "env:KG_LEAK_HOOK"), to_file=_fmt == "json")


def _policy(w: World) -> str:
    return str(rotation_world.policy_file(w.inputs, 30))


def _select(user: rotation_world.User) -> list[str]:
    return ["--select", f"name~^{user.name}/"]


ROT_SOURCES = ["--source", "aws-iam", "--source", "aws-secretsmanager", "--source", "aws-ssm",
               "--source", "vault"]


@case("rotate-plan-table-out-json", {0}, "ROTATE")
def _rotate_plan(w: World) -> Run:
    plan = w.reports / "plan.json"
    result = invoke(["rotate", "plan", "--policy", _policy(w), *_select(w.rotation_user),
                     *ROT_SOURCES, "--out", str(plan)], at=rotation_world.later(40))
    return Run(result, plan)


@case("rotate-apply-json-ok", {0}, "done")
def _rotate_apply(w: World) -> Run:
    report = w.reports / "apply.json"
    result = invoke(["rotate", "apply", str(w.reports / "plan.json"), "--yes", "-f", "json",
                     "-o", str(report), "--notify", "env:KG_LEAK_HOOK"])
    _learn_new_secret(w, w.rotation_user, "iam-rotated-new")
    return Run(result, report)


def _learn_new_secret(w: World, user: rotation_world.User, label: str) -> None:
    """Add a rotated key's new secret (read from its first copy) to the planted values."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in w.env.items():
            mp.setenv(name, value)
        copy = user.copies[0]
        value = rotation_world.secret_in(copy, rotation_world.read_copy(copy))
    if value != user.old_secret:
        w.planted[label] = value


@case("rotate-run-json-hook-fails-rolls-back", {1}, "rolled-back")
def _rotate_rollback(w: World) -> Run:
    hooks = w.inputs / "hooks.toml"
    hooks.write_text(f'[[hook]]\nselect = "name~^{w.rollback_user.name}/"\n'
                     'command = ["false"]\n', encoding="utf-8")
    result = invoke(["rotate", "run", "--due", "--apply", "--yes", "--policy", _policy(w),
                     "--hooks", str(hooks), *_select(w.rollback_user), *ROT_SOURCES,
                     "-f", "json", "--notify", "env:KG_LEAK_HOOK"], at=rotation_world.later(40))
    # the key the rollback discarded was stored in the copy first: Secrets Manager keeps
    # it as an earlier version, which is how the test learns it and guards it too
    client = {"endpoint_url": w.endpoint, "region_name": REGION,
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sm = boto3.client("secretsmanager", **client)  # type: ignore[call-overload]
    copy = w.rollback_user.copies[0]
    for version in sm.list_secret_version_ids(SecretId=copy.name)["Versions"]:
        value = sm.get_secret_value(SecretId=copy.name, VersionId=version["VersionId"])
        secret = rotation_world.secret_in(copy, value["SecretString"])
        if secret != w.rollback_user.old_secret:
            w.planted[f"iam-rolled-back-{version['VersionId'][:8]}"] = secret
    assert any(k.startswith("iam-rolled-back-") for k in w.planted), "no discarded key seen"
    iam = boto3.client("iam", **client)  # type: ignore[call-overload]
    for meta in iam.list_access_keys(UserName=w.rollback_user.name)["AccessKeyMetadata"]:
        assert meta["AccessKeyId"] == w.rollback_user.old_id  # the new key was deleted
    return Run(result)


for _fmt in ("table", "json"):
    _report_case(["rotate", "status"], _fmt, {0}, to_file=_fmt == "json")
    _report_case(["rotate", "resume", "--yes"], _fmt, {0}, to_file=_fmt == "json")


@case("rotate-apply-table-plan-with-a-secret", {2})
def _tampered_plan(w: World) -> Run:
    plan = json.loads((w.reports / "plan.json").read_text(encoding="utf-8"))
    plan["items"][0]["key"] = {"name": w.planted["sm-plain"], "secret": w.planted["sm-plain"]}
    plan["plan_id"] = w.planted["sm-json-api-key"]
    bad = w.inputs / "tampered-plan.json"
    bad.write_text(json.dumps(plan), encoding="utf-8")
    return Run(invoke(["rotate", "apply", str(bad), "--yes"]))


@case("rotate-apply-table-plan-not-json", {2})
def _garbage_plan(w: World) -> Run:
    bad = w.inputs / "garbage-plan.json"
    bad.write_text('{"plan_id": "' + w.planted["sm-plain"] + '", oops', encoding="utf-8")
    return Run(invoke(["rotate", "apply", str(bad), "--yes"]))


# -- error paths -------------------------------------------------------------------------------


def _config_case(id: str, text: str, expect: str = "") -> None:
    def run(w: World) -> Run:
        path = w.inputs / f"{id}.toml"
        path.write_text(text.format(**w.planted), encoding="utf-8")
        return Run(invoke(["--config", str(path), "inventory", *sources("dotenv")]))

    CASES.append(Case(f"inventory-table-{id}", run, frozenset({2}), expect))


_config_case("config-wrong-type", '[sources.vault]\ntimeout = "{vault-kv}"\n')
_config_case("config-malformed-toml", "[sources.vault]\ntoken = {vault-root-token}\n")
_config_case("config-unknown-key", '[sources.vault]\n"{ssm-secure}" = 1\n')
_config_case("config-bad-webhook", '[usage]\nnotify = "{usage-key-id}"\n')


@case("inventory-json-admin-key-inline-in-config-refused", {3}, "anthropic")
def _inline_admin_key(w: World) -> Run:
    config = w.inputs / "inline-key.toml"
    config.write_text(f'[sources.anthropic]\nadmin_key = "{w.planted["anthropic-admin"]}"\n'
                      f'base_url = "{w.anthropic.url}"\n', encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANTHROPIC_ADMIN_KEY")
        return Run(invoke(["--config", str(config), "inventory", *sources("anthropic"),
                           "-f", "json", "--no-record"]))


@case("inventory-json-unreachable-endpoints", {3}, "errors")
def _unreachable(w: World) -> Run:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL", "VAULT_ADDR", "ANTHROPIC_BASE_URL", "LITELLM_BASE_URL"):
            mp.setenv(var, dead)
        mp.setenv("OPENAI_BASE_URL", dead + "/v1")
        return Run(invoke(["inventory", *sources(), "--inspect-values", "-f", "json",
                           "--no-record"]))


@case("inventory-json-wrong-credentials", {3}, "errors")
def _wrong_credentials(w: World) -> Run:
    rng = random.Random(99)
    wrong = {"ANTHROPIC_ADMIN_KEY": _put(rng, "anthropic-admin", w.planted, "wrong-anthropic"),
             "OPENAI_ADMIN_KEY": _put(rng, "openai-admin", w.planted, "wrong-openai"),
             "LITELLM_MASTER_KEY": "sk-" + secrets.token_hex(20),
             "VAULT_TOKEN": "hvs." + secrets.token_urlsafe(24)}
    w.planted["wrong-litellm"] = wrong["LITELLM_MASTER_KEY"]
    w.planted["wrong-vault"] = wrong["VAULT_TOKEN"]
    with pytest.MonkeyPatch.context() as mp:
        for name, value in wrong.items():
            mp.setenv(name, value)
        return Run(invoke(["inventory", *sources("vault", "anthropic", "openai", "litellm"),
                           "-f", "json", "--no-record"]))


@case("check-sarif-access-denied", {1, 3}, "could not be read")
def _access_denied(w: World) -> Run:
    # a principal that may read Secrets Manager only; moto then enforces IAM for every call
    iam = boto3.client("iam", endpoint_url=w.endpoint, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"leak-limited-{secrets.token_hex(3)}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="sm-only", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "secretsmanager:ListSecrets", "secretsmanager:GetSecretValue"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    w.planted["denied-principal-secret"] = key["SecretAccessKey"]
    report = w.reports / "denied.sarif"
    with pytest.MonkeyPatch.context() as mp, enforced_auth(w.endpoint):
        mp.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        mp.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        result = invoke(["check", *sources("aws-secretsmanager", "aws-ssm", "aws-iam"),
                         "--inspect-values", "-f", "sarif", "-o", str(report)])
    return Run(result, report)


@case("usage-scan-json-webhook-refuses", {1}, "404")
def _notify_refused(w: World) -> Run:
    w.hook.answers[:] = [(404, None)] * 5  # a deleted webhook: fails at once, no retries
    try:
        return Run(invoke(["usage", "scan", "spend.jsonl", "--since", "2026-02-01", "-f", "json",
                           "--allow-country", "FR", "--notify", "env:KG_LEAK_HOOK",
                           "--state", str(w.reports / "usage-refused")]))
    finally:
        w.hook.answers.clear()


@case("canary-create-litellm-table-ok", {0}, "canary cn-")
def _canary_litellm(w: World) -> Run:
    from tests.canary.litellm_proxy import FakeProxy

    proxy = FakeProxy("sk-master-" + secrets.token_hex(16))
    w.planted["canary-proxy-master"] = proxy.master_key
    with proxy.running(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("LITELLM_BASE_URL", proxy.url)
        mp.setenv("LITELLM_MASTER_KEY", proxy.master_key)
        made = invoke(["canary", "create", "litellm", "--name", "reporting-batch",
                       "--plant", "file:canary/litellm.env",
                       "--plant", f"vault:{MOUNT}/prod/reporting"])
        plant = (w.work / "canary" / "litellm.env").read_text(encoding="utf-8")
        w.planted["canary-litellm-key"] = next(
            v for line in plant.splitlines() for v in [line.split("=", 1)[-1].strip('"')]
            if v.startswith("sk-"))
        listed = invoke(["canary", "list", "-f", "json"])
        checked = invoke(["canary", "check", "-f", "json"])
        deleted = invoke(["canary", "delete", "reporting-batch"])
    assert not proxy.keys, deleted.stderr  # the virtual key is gone again
    return Run(made, more_stderr="\n".join(
        r.stdout + r.stderr for r in (listed, checked, deleted)))


@case("canary-delete-table-ok", {0})
def _canary_delete(w: World) -> Run:
    return Run(invoke(["canary", "delete", "billing-export-svc"]))


def test_leakcheck_finds_every_form_and_spares_public_prefixes() -> None:
    value = fake_key("anthropic-api", random.Random(1))
    planted = {"k": value}
    inner = value[30:42]
    hits = find_leaks(planted, [
        ("raw", f"xx {inner} yy"),
        ("b64", base64.b64encode(b"pre" + value.encode() + b"post")),
        ("url", "q=" + urllib.parse.quote(value + "+/", safe="")),
        ("json", json.dumps({"v": value + '"'})),
        ("prefix-only", f"kind {value[:12]} shown"),
        ("short", value[50:61]),
    ])
    assert {h.where for h in hits} == {"raw", "b64", "url", "json"}
    assert all(h.secret == "k" for h in hits)
    with pytest.raises(ValueError, match="printable ASCII"):
        find_leaks({"short": value[:11]}, [])


def test_leakcheck_reads_databases_through_their_engine(tmp_path: Path) -> None:
    import sqlite3

    import duckdb

    value = fake_key("openai-project", random.Random(2))
    with sqlite3.connect(tmp_path / "a.db") as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (value,))
    with duckdb.connect(str(tmp_path / "b.duckdb")) as con:
        con.execute("CREATE TABLE t AS SELECT ? || range::VARCHAR AS v FROM range(3000)",
                    [value])
        con.execute("CHECKPOINT")
    hits = find_leaks({"k": value}, [tmp_path])
    assert {h.where.rsplit("/", 1)[-1] for h in hits} >= {"a.db", "b.duckdb (duckdb dump)"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_planted_value_leaks(world: World, case: Case) -> None:
    run = case.run(world)
    result = run.result
    assert result.exit_code in case.ok, (
        f"exit {result.exit_code}, expected {sorted(case.ok)}\n{result.stderr[-3000:]}\n"
        f"{result.exception!r}")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else "")
    assert "Traceback" not in result.stderr
    if case.expect:
        shown = result.stdout + result.stderr
        if run.report is not None and run.report.exists():
            shown += run.report.read_text(encoding="utf-8")
        assert case.expect in shown
    leaks = find_leaks(world.planted, run.texts())
    assert leaks == [], "\n".join(str(leak) for leak in leaks)


def test_the_world_was_real(world: World) -> None:
    """The cases above read planted values from every source and sent webhooks.

    A guard whose sources silently returned nothing would pass for the wrong reason.
    """
    doc = json.loads((world.reports / "inventory.json").read_text(encoding="utf-8"))
    inspected = {k["source"] for k in doc["keys"] if k["value_inspected"]}
    assert {k["source"] for k in doc["keys"]} == set(ALL_SOURCES)
    assert {"aws-secretsmanager", "aws-ssm", "vault", "keyring", "dotenv"} <= inspected
    assert doc["errors"] == []
    assert {"iam-rotated-new", "canary-secret", "fingerprint-key"} <= set(world.planted)
    assert (world.data / "keyguard" / "rotation" / "journal.jsonl").stat().st_size > 0
    assert (world.data / "keyguard" / "usage.duckdb").exists()
    assert len(world.hook.received) >= 3


def test_nothing_at_rest_leaks(world: World) -> None:
    """Last: every file keyguard wrote, every report, every webhook body."""
    received = [(f"webhook{path}", body) for path, _, body in world.hook.received]
    data_files = [p for p in world.data.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in data_files)
    leaks: list[Leak] = find_leaks(world.planted, [
        ("data", world.data), ("reports", world.reports),
        *received])
    assert leaks == [], "\n".join(str(leak) for leak in leaks)
