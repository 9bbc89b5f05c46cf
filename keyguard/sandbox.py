"""A local AWS sandbox (moto server) seeded with realistic fake keys, for the demo, tests and bench.

Everything here is fake: tokens come from :func:`keyguard.fakes.fake_key`, IAM keys are
minted by moto, and the credentials are the literal ``testing``. The seed mixes what a
real account holds: secrets of many providers (bare tokens, JSON objects, AWS key pairs
that match an IAM user's key, database passwords), SecureString and plaintext parameters,
rotation on some secrets, expiry policies on some parameters, tags that are sometimes
missing, and IAM users with zero to two keys, some admins, some keys used, some idle.

Ages: moto has no clock API and stamps every object "now". When the server runs in this
process, :func:`seed` back-dates each object by running its create call under
``freezegun.freeze_time(ts, tick=True)``, which also freezes the server thread. freezegun
is process-global and costs ~10 ms per freeze, so timestamps are drawn from ~48 day
buckets: one freeze per bucket, and the calls inside a bucket run on a small thread pool.
With an out-of-process server use ``backdate=False`` (everything is created "now").

This module imports moto and freezegun (the ``demo`` extra) lazily, inside the functions
that need them, so importing it costs no more than boto3.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from keyguard.classify import format_by_kind
from keyguard.fakes import fake_aws_pair, fake_key
from keyguard.secret import Secret

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_ssm.literals import ParameterTypeType
    from types_boto3_ssm.type_defs import TagTypeDef as SsmTagTypeDef

#: Fake credentials every sandbox client uses; moto maps them to account 123456789012.
SANDBOX_ACCESS_KEY = "testing"
SANDBOX_ACCOUNT = "123456789012"
DEFAULT_REGIONS = ("us-east-1", "eu-west-1")

#: Variables that would make boto3 look past the sandbox (a real profile, real keys).
CLEARED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
               "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS")

_ENVIRONMENTS = ("prod", "prod", "staging", "dev")
#: (team, service, kind) for secrets holding one provider token.
_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("payments", "stripe", "stripe-secret"),
    ("payments", "stripe-restricted", "stripe-restricted"),
    ("ml", "openai-key", "openai-project"),
    ("ml", "openai-svcacct", "openai-svcacct"),
    ("ml", "anthropic-key", "anthropic-api"),
    ("ml", "anthropic-admin", "anthropic-admin"),
    ("ml", "deepseek-key", "deepseek-api"),
    ("ml", "groq", "groq-api"),
    ("ml", "hf-token", "huggingface-user"),
    ("ml", "openrouter", "openrouter-api"),
    ("ml", "xai", "xai-api"),
    ("platform", "github-token", "github-fine-grained-pat"),
    ("platform", "github-classic", "github-classic-pat"),
    ("platform", "gitlab-token", "gitlab-pat"),
    ("platform", "npm-publish", "npm-token"),
    ("ops", "slack-bot", "slack-bot"),
    ("growth", "sendgrid", "sendgrid-api"),
    ("search", "google-maps", "google-api"),
)
_OWNERS = ("payments-team", "ml-platform", "platform-eng", "sre", "growth", "alice", "bob")
#: IAM permission profiles: name -> share of users (the rest get no permissions).
_USER_PROFILES = (("admin", 0.10), ("star-inline", 0.05), ("s3", 0.20), ("readonly", 0.20),
                  ("iam", 0.05))
_ADMIN_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_S3_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]}
_READ_DOC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ec2:Describe*", "s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}
_IAM_DOC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:CreateUser", "iam:CreateAccessKey", "iam:ListUsers"],
     "Resource": "*"}]}

_BUCKETS = 48  # distinct back-dated days (one freezegun freeze each)
_MAX_AGE_DAYS = 400


# -- the summary -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeededSecret:
    """One Secrets Manager secret as planned; ``kinds``/``fields`` are what classification should find."""

    region: str
    name: str
    created: datetime
    kinds: tuple[str, ...]
    fields: tuple[str | None, ...]
    key_id: str | None = None  # AWS key pairs: the IAM key id stored in the value
    rotated: datetime | None = None
    rotation_days: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class SeededParameter:
    """One SSM parameter as planned."""

    region: str
    name: str
    type: str  # SecureString | String
    modified: datetime
    kinds: tuple[str, ...]
    tier: str = "Standard"
    expires: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeededKey:
    """One IAM access key as created (the id comes from moto)."""

    key_id: str
    user: str
    created: datetime
    status: str  # Active | Inactive
    last_used: datetime | None = None
    last_used_region: str | None = None


@dataclass(frozen=True, slots=True)
class SeededUser:
    """One IAM user; ``profile`` is its permission profile (admin, s3, readonly, iam, none...)."""

    name: str
    profile: str
    keys: tuple[SeededKey, ...]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """What :func:`seed` created; timestamps are the planned (back-dated) ones.

    ``values`` holds every fake secret value planted (wrapped, never printed), so tests
    can prove none of them reaches a record, a message or a report.
    """

    endpoint_url: str
    regions: tuple[str, ...]
    backdated: bool
    seconds: float
    secrets: tuple[SeededSecret, ...]
    parameters: tuple[SeededParameter, ...]
    users: tuple[SeededUser, ...]
    values: tuple[Secret, ...] = field(repr=False, default=())

    def describe(self) -> str:
        """Say in one line what was seeded (for the demo's narration)."""
        c = self.counts()
        return (f"{c['secrets']} secrets ({c['secrets_rotated']} with rotation), "
                f"{c['parameters']} parameters ({c['parameters_expiring']} expiring), "
                f"{c['users']} IAM users with {c['access_keys']} access keys")

    def counts(self) -> dict[str, int]:
        """Count what was created, by category (for the demo, tests and bench output)."""
        keys = [k for u in self.users for k in u.keys]
        return {
            "secrets": len(self.secrets),
            "secrets_deleted": sum(s.deleted for s in self.secrets),
            "secrets_rotated": sum(s.rotated is not None for s in self.secrets),
            "parameters": len(self.parameters),
            "parameters_secure": sum(p.type == "SecureString" for p in self.parameters),
            "parameters_expiring": sum(p.expires is not None for p in self.parameters),
            "users": len(self.users),
            "users_admin": sum(u.profile in ("admin", "star-inline") for u in self.users),
            "access_keys": len(keys),
            "access_keys_used": sum(k.last_used is not None for k in keys),
            "access_keys_inactive": sum(k.status == "Inactive" for k in keys),
        }


# -- server and environment ------------------------------------------------------------------


@contextmanager
def start_moto_server() -> Iterator[str]:
    """Run a moto server on a free loopback port in this process; yield its endpoint URL.

    NOTE: moto's backends are module-level, so every in-process server shares one state;
    callers that seed twice must use distinct name prefixes (or regions).
    """
    from moto.server import ThreadedMotoServer  # demo extra; heavy import

    # NOTE: werkzeug logs every request at INFO, and a traceback for each 500 moto answers
    # to an API it does not implement (expected: sources degrade); both would flood stderr.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def sandbox_env(endpoint_url: str, region: str = DEFAULT_REGIONS[0]) -> dict[str, str]:
    """Environment that points boto3 at the sandbox with fake credentials and no profiles.

    Callers should also unset :data:`CLEARED_ENV`, so no real profile or token leaks in.
    """
    return {
        "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SANDBOX_ACCESS_KEY,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",  # no 1 s IMDS probe when credentials are missing
    }


# -- seeding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Op:
    """One back-dated step: run ``fn`` at ``at`` (phase orders steps inside one bucket)."""

    at: datetime
    phase: int
    fn: Callable[[], None]


class _Seeder:
    """Plans the fake estate with one RNG, then runs it bucket by bucket."""

    def __init__(self, endpoint_url: str, regions: tuple[str, ...], rng: random.Random,
                 now: datetime, prefix: str, workers: int) -> None:
        self.endpoint_url = endpoint_url
        self.regions = regions
        self.rng = rng
        self.now = now
        self.prefix = prefix
        self.workers = max(1, workers)
        self.session = boto3.Session(aws_access_key_id=SANDBOX_ACCESS_KEY,
                                     aws_secret_access_key=SANDBOX_ACCESS_KEY,
                                     region_name=regions[0])
        self.config = BotoConfig(retries={"mode": "standard", "max_attempts": 3},
                                 max_pool_connections=self.workers + 2)
        self._lock = threading.Lock()
        self.sm: dict[str, SecretsManagerClient] = {
            r: self.session.client("secretsmanager", region_name=r, endpoint_url=endpoint_url,
                                   config=self.config) for r in regions}
        self.ssm: dict[str, SSMClient] = {
            r: self.session.client("ssm", region_name=r, endpoint_url=endpoint_url,
                                   config=self.config) for r in regions}
        self.iam: IAMClient = self.session.client("iam", region_name=regions[0],
                                                  endpoint_url=endpoint_url, config=self.config)
        days = sorted({round(1 + (_MAX_AGE_DAYS - 1) * (i / (_BUCKETS - 1)) ** 1.6)
                       for i in range(_BUCKETS)})
        self.buckets = [now - timedelta(days=d, hours=rng.randint(0, 11), minutes=rng.randint(0, 59))
                        for d in days]  # buckets[0] is the most recent
        self.ops: list[_Op] = []
        self.values: list[Secret] = []
        self.pairs: dict[int, tuple[str, str]] = {}  # planned key index -> (id, secret), set at run time
        self.key_rows: dict[int, SeededKey] = {}
        self.key_buckets: list[int] = []  # planned key index -> bucket of its creation

    # -- planning helpers

    def _bucket(self, older_than: int | None = None) -> int:
        """Pick a bucket index, optionally strictly more recent than bucket ``older_than``."""
        if older_than is None:
            return self.rng.randrange(len(self.buckets))
        if older_than <= 0:
            return 0
        return self.rng.randrange(older_than)

    def _tags(self, env: str) -> dict[str, str]:
        roll = self.rng.random()
        if roll < 0.1:
            return {}
        tags = {"environment": env}
        if roll > 0.3:
            tags["owner"] = self.rng.choice(_OWNERS)
        return tags

    def _keep(self, value: str) -> str:
        self.values.append(Secret(value))
        return value

    # -- IAM

    def plan_users(self, count: int) -> list[Callable[[], SeededUser]]:
        """Plan users and their keys; returns thunks that build each SeededUser after the run."""
        admin_policy = f"arn:aws:iam::{SANDBOX_ACCOUNT}:policy/{self.prefix}AdministratorAccess"
        if count:
            self._setup_iam()
        builders: list[Callable[[], SeededUser]] = []
        key_index = 0
        for i in range(count):
            name = f"{self.prefix}{self.rng.choice(('svc', 'ci', 'app', 'etl', 'dev'))}-user-{i:03d}"
            roll, profile = self.rng.random(), "none"
            for candidate, share in _USER_PROFILES:
                if roll < share:
                    profile = candidate
                    break
                roll -= share
            env = self.rng.choice(_ENVIRONMENTS)
            tags = self._tags(env)
            n_keys = self.rng.choices((0, 1, 2), weights=(15, 60, 25))[0]
            created_bucket = self._bucket()
            indexes = list(range(key_index, key_index + n_keys))
            key_index += n_keys
            key_plan = []
            for k in indexes:
                bucket = self._bucket(created_bucket + 1)
                used = self.rng.random() < 0.6 and bucket > 0
                used_bucket = self._bucket(bucket) if used else None
                inactive = self.rng.random() < 0.1
                key_plan.append((k, bucket, used_bucket, inactive))
                self.key_buckets.append(bucket)
            self.ops.append(_Op(self.buckets[created_bucket], 0,
                                self._user_op(name, tags, profile, admin_policy)))
            for k, bucket, used_bucket, inactive in key_plan:
                self.ops.append(_Op(self.buckets[bucket], 1, self._key_op(k, name, bucket)))
                if inactive:  # deactivated lately, after any use
                    self.ops.append(_Op(self.buckets[0], 4, self._deactivate_op(k)))
                if used_bucket is not None:
                    region = self.rng.choice(self.regions)
                    self.ops.append(_Op(self.buckets[used_bucket], 3,
                                        self._use_op(k, region, used_bucket)))
            builders.append(self._user_builder(name, profile, tags, indexes))
        return builders

    def _setup_iam(self) -> None:
        docs = ((f"{self.prefix}auditors", _READ_DOC), (f"{self.prefix}iam-operators", _IAM_DOC))
        try:
            self.iam.create_policy(PolicyName=f"{self.prefix}AdministratorAccess",
                                   PolicyDocument=json.dumps(_ADMIN_DOC),
                                   Description="Full access (customer-managed copy for the sandbox)")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
                raise
        for group, doc in docs:
            try:
                self.iam.create_group(GroupName=group)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
                    raise
            self.iam.put_group_policy(GroupName=group, PolicyName="access",
                                      PolicyDocument=json.dumps(doc))

    def _user_op(self, name: str, tags: Mapping[str, str], profile: str, admin_policy: str) -> Callable[[], None]:
        def run() -> None:
            self.iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            if profile == "admin":
                self.iam.attach_user_policy(UserName=name, PolicyArn=admin_policy)
            elif profile == "star-inline":
                self.iam.put_user_policy(UserName=name, PolicyName="everything",
                                         PolicyDocument=json.dumps(_ADMIN_DOC))
            elif profile == "s3":
                self.iam.put_user_policy(UserName=name, PolicyName="s3-all",
                                         PolicyDocument=json.dumps(_S3_DOC))
            elif profile == "readonly":
                self.iam.add_user_to_group(GroupName=f"{self.prefix}auditors", UserName=name)
            elif profile == "iam":
                self.iam.add_user_to_group(GroupName=f"{self.prefix}iam-operators", UserName=name)
        return run

    def _key_op(self, index: int, user: str, bucket: int) -> Callable[[], None]:
        def run() -> None:
            key = self.iam.create_access_key(UserName=user)["AccessKey"]
            with self._lock:
                self.pairs[index] = (key["AccessKeyId"], self._keep(key["SecretAccessKey"]))
                self.key_rows[index] = SeededKey(key["AccessKeyId"], user, self.buckets[bucket], "Active")
        return run

    def _deactivate_op(self, index: int) -> Callable[[], None]:
        def run() -> None:
            row = self.key_rows[index]
            self.iam.update_access_key(UserName=row.user, AccessKeyId=row.key_id, Status="Inactive")
            with self._lock:
                self.key_rows[index] = SeededKey(row.key_id, row.user, row.created, "Inactive",
                                                 row.last_used, row.last_used_region)
        return run

    def _use_op(self, index: int, region: str, bucket: int) -> Callable[[], None]:
        def run() -> None:
            key_id, secret = self.pairs[index]
            with self._lock:  # NOTE: Session.client() is not thread-safe
                sts = self.session.client("sts", region_name=region, endpoint_url=self.endpoint_url,
                                          aws_access_key_id=key_id, aws_secret_access_key=secret,
                                          config=self.config)
            sts.get_caller_identity()
            with self._lock:
                row = self.key_rows[index]
                self.key_rows[index] = SeededKey(row.key_id, row.user, row.created, row.status,
                                                 self.buckets[bucket], region)
        return run

    def _user_builder(self, name: str, profile: str, tags: Mapping[str, str],
                      indexes: list[int]) -> Callable[[], SeededUser]:
        return lambda: SeededUser(name, profile, tuple(self.key_rows[k] for k in indexes), dict(tags))

    # -- Secrets Manager

    def plan_secrets(self, count: int) -> list[Callable[[], SeededSecret]]:
        """Plan secrets; AWS-pair secrets reuse the planned IAM keys while there are any left."""
        builders: list[Callable[[], SeededSecret]] = []
        pair_keys = list(range(len(self.key_buckets)))
        self.rng.shuffle(pair_keys)
        for i in range(count):
            region = self.regions[i % len(self.regions)]
            env = self.rng.choice(_ENVIRONMENTS)
            team, service, kind = self.rng.choice(_SERVICES)
            shape = self.rng.choices(("bare", "json", "multi", "pair", "db"),
                                     weights=(45, 25, 8, 12, 10))[0]
            key_index: int | None = None
            fake_pair: tuple[str, str] | None = None
            kinds: tuple[str, ...]
            fields: tuple[str | None, ...]
            if shape == "bare":
                value: str | None = self._keep(fake_key(kind, self.rng))
                kinds, fields = (kind,), (None,)
            elif shape == "json":
                fname = _field_for(kind)
                value = json.dumps({fname: self._keep(fake_key(kind, self.rng)), "account": team})
                kinds, fields = (kind,), (fname,)
            elif shape == "multi":
                value = json.dumps({"openai_api_key": self._keep(fake_key("openai-project", self.rng)),
                                    "stripe_key": self._keep(fake_key("stripe-secret", self.rng)),
                                    "note": "rotated by hand"})
                service = "llm-and-billing"
                kinds, fields = ("openai-project", "stripe-secret"), ("openai_api_key", "stripe_key")
            elif shape == "pair":
                service = "aws-deploy-credentials"
                if pair_keys:
                    key_index, value = pair_keys.pop(), None  # value known once IAM ran
                else:
                    fake_pair = fake_aws_pair(self.rng)
                    self._keep(fake_pair[1])
                    value = json.dumps({"aws_access_key_id": fake_pair[0],
                                        "aws_secret_access_key": fake_pair[1]})
                kinds, fields = ("aws-access-key",), ("aws_secret_access_key",)
            else:
                password = "".join(self.rng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789")
                                   for _ in range(24))
                value = json.dumps({"username": "app_user", "password": self._keep(password),
                                    "host": f"{service}.db.internal", "port": "5432"})
                service = "postgres"
                kinds, fields = ("unknown",), ("password",)
            name = f"{self.prefix}{env}/{team}/{service}-{i:04d}"
            tags = self._tags(env)
            created = self._bucket()
            if key_index is not None:
                # The pair's IAM key must exist first: never older than the key itself
                # (the same bucket is fine: phase 2 runs after the key's phase 1).
                created = self._bucket(self.key_buckets[key_index] + 1)
            rotated_bucket = self._bucket(created) if self.rng.random() < 0.3 and created > 0 else None
            rotation_days = self.rng.choice((30, 60, 90)) if rotated_bucket is not None else None
            deleted = self.rng.random() < 0.03
            self.ops.append(_Op(self.buckets[created], 2,
                                self._secret_op(region, name, value, key_index, tags, deleted)))
            if rotated_bucket is not None and not deleted:
                self.ops.append(_Op(self.buckets[rotated_bucket], 3,
                                    self._rotate_op(region, name, rotation_days or 30)))
            builders.append(self._secret_builder(
                region, name, created, kinds, fields, key_index, fake_pair,
                rotated_bucket if not deleted else None, rotation_days if not deleted else None,
                tags, deleted))
        return builders

    def _secret_op(self, region: str, name: str, value: str | None, key_index: int | None,
                   tags: Mapping[str, str], deleted: bool) -> Callable[[], None]:
        def run() -> None:
            text = value
            if text is None and key_index is not None:
                key_id, secret = self.pairs[key_index]
                text = json.dumps({"aws_access_key_id": key_id, "aws_secret_access_key": secret})
            client = self.sm[region]
            client.create_secret(Name=name, SecretString=text or "",
                                 Description=f"{name.rsplit('/', 1)[-1]} credentials",
                                 Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            if deleted:
                client.delete_secret(SecretId=name, RecoveryWindowInDays=7)
        return run

    def _rotate_op(self, region: str, name: str, days: int) -> Callable[[], None]:
        def run() -> None:
            # NOTE: RotateImmediately=False, or moto leaves AWSCURRENT without a value.
            self.sm[region].rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": days},
                                          RotateImmediately=False)
        return run

    def _secret_builder(self, region: str, name: str, created: int, kinds: tuple[str, ...],
                        fields: tuple[str | None, ...], key_index: int | None,
                        fake_pair: tuple[str, str] | None, rotated: int | None,
                        rotation_days: int | None, tags: Mapping[str, str],
                        deleted: bool) -> Callable[[], SeededSecret]:
        def build() -> SeededSecret:
            key_id = self.pairs[key_index][0] if key_index is not None else (fake_pair[0] if fake_pair else None)
            return SeededSecret(region, name, self.buckets[created], kinds, fields, key_id,
                                self.buckets[rotated] if rotated is not None else None,
                                rotation_days, dict(tags), deleted)
        return build

    # -- SSM

    def plan_parameters(self, count: int) -> list[SeededParameter]:
        """Plan parameters: mostly SecureString, some plaintext, some with an expiry policy."""
        out: list[SeededParameter] = []
        for i in range(count):
            region = self.regions[i % len(self.regions)]
            env = self.rng.choice(_ENVIRONMENTS)
            team, service, kind = self.rng.choice(_SERVICES)
            name = f"/{self.prefix}{env}/{team}/{service}-{i:04d}"
            token = self._keep(fake_key(kind, self.rng))
            as_json = self.rng.random() < 0.1
            value = json.dumps({_field_for(kind): token}) if as_json else token
            ptype = "String" if self.rng.random() < 0.15 else "SecureString"
            expires = None
            if self.rng.random() < 0.25:
                expires = (self.now + timedelta(days=self.rng.randint(3, 120))).replace(microsecond=0)
            tags = self._tags(env)
            bucket = self._bucket()
            self.ops.append(_Op(self.buckets[bucket], 2,
                                self._parameter_op(region, name, value, ptype, expires, tags)))
            out.append(SeededParameter(region, name, ptype, self.buckets[bucket], (kind,),
                                       "Advanced" if expires else "Standard", expires, dict(tags)))
        return out

    def _parameter_op(self, region: str, name: str, value: str, ptype: str,
                      expires: datetime | None, tags: Mapping[str, str]) -> Callable[[], None]:
        def run() -> None:
            client = self.ssm[region]
            tag_list: list[SsmTagTypeDef] = [{"Key": k, "Value": v} for k, v in tags.items()]
            kind: ParameterTypeType = "SecureString" if ptype == "SecureString" else "String"
            if expires is None:
                client.put_parameter(Name=name, Value=value, Type=kind, Tags=tag_list)
                return
            policies = [
                {"Type": "Expiration", "Version": "1.0",
                 "Attributes": {"Timestamp": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")}},
                {"Type": "NoChangeNotification", "Version": "1.0",
                 "Attributes": {"After": "90", "Unit": "Days"}},
            ]
            client.put_parameter(Name=name, Value=value, Type=kind, Tier="Advanced",
                                 Policies=json.dumps(policies), Tags=tag_list)
        return run

    # -- running

    def run(self, backdate: bool) -> None:
        """Run every op: per bucket (oldest first) under one freeze, phases in order."""
        groups: dict[datetime, dict[int, list[Callable[[], None]]]] = defaultdict(lambda: defaultdict(list))
        for op in self.ops:
            groups[op.at if backdate else self.now][op.phase].append(op.fn)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="seed") as pool:
            for at in sorted(groups):
                phases = groups[at]
                if backdate:
                    import freezegun  # demo extra

                    with freezegun.freeze_time(at, tick=True):
                        _run_phases(pool, phases)
                else:
                    _run_phases(pool, phases)


def _field_for(kind: str) -> str:
    """JSON field for a token: kinds recognised only by name (DeepSeek) need it in the field."""
    fmt = format_by_kind(kind)
    return f"{fmt.provider}_api_key" if fmt is not None and fmt.name_hint else "api_key"


def _run_phases(pool: ThreadPoolExecutor, phases: Mapping[int, list[Callable[[], None]]]) -> None:
    for phase in sorted(phases):
        for future in [pool.submit(fn) for fn in phases[phase]]:
            future.result()  # re-raises the first seeding error


def seed(endpoint_url: str, *, regions: tuple[str, ...], secrets: int, parameters: int, users: int,
         rng: random.Random, now: datetime, backdate: bool = True, workers: int = 4,
         prefix: str = "") -> SeedSummary:
    """Fill a moto server with fake secrets, parameters and IAM users; say what was made.

    Secrets and parameters are spread round-robin over ``regions``; IAM is global. Ages
    spread over ~1-400 days when ``backdate`` is on, which needs the server in this
    process (see the module docstring). ``prefix`` goes in front of every name so two
    seeds can share one server (moto's state is per process).
    """
    if not regions:
        raise ValueError("seed() needs at least one region")
    started = time.perf_counter()
    seeder = _Seeder(endpoint_url, tuple(regions), rng, now, prefix, workers)
    user_builders = seeder.plan_users(users)
    secret_builders = seeder.plan_secrets(secrets)
    seeded_parameters = seeder.plan_parameters(parameters)
    seeder.run(backdate)
    return SeedSummary(
        endpoint_url=endpoint_url,
        regions=tuple(regions),
        backdated=backdate,
        seconds=time.perf_counter() - started,
        secrets=tuple(b() for b in secret_builders),
        parameters=tuple(seeded_parameters),
        users=tuple(b() for b in user_builders),
        values=tuple(seeder.values),
    )
