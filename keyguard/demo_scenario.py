"""The story ``keyguard demo`` tells on top of the seeded sandbox: copies, changes, usage.

:mod:`keyguard.sandbox` seeds bulk fake keys; this module adds the few deliberate
situations a tour should show (a key copied from a secret store into a .env file, an IAM
key with a stored copy), the change between two runs that ``--diff`` reveals, and the
usage export of a small synthetic org with planted attacks for ``usage scan``
(:mod:`keyguard.usage.synthetic`, generated on the fly: deterministic, offline, and never
stale against the importers, which a bundled file could become). All keys are random
fakes; nothing here is printed except names.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from keyguard.fakes import fake_aws_pair, fake_key
from keyguard.usage.synthetic import Corpus, CorpusSpec, generate

DEMO_SECRET = "prod/app/openai"  # noqa: S105  (a secret name, not a value)
NEW_SECRET = "prod/app/anthropic"  # noqa: S105


def plant_demo_extras(endpoint: str, workdir: Path, *, rng: random.Random, region: str) -> str:
    """Write ``workdir/app/.env`` and matching store entries; returns a one-line description."""
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region)
    openai_key = fake_key("openai-project", rng)
    sm.create_secret(Name=DEMO_SECRET, SecretString=json.dumps({"api_key": openai_key}),
                     Tags=[{"Key": "owner", "Value": "app-team"},
                           {"Key": "environment", "Value": "prod"}])
    iam.create_user(UserName="legacy-deployer", Path="/service/")
    created = iam.create_access_key(UserName="legacy-deployer")["AccessKey"]
    key_id, secret_key = created["AccessKeyId"], created["SecretAccessKey"]
    sm.create_secret(Name="prod/deploy/aws", SecretString=json.dumps(
        {"aws_access_key_id": key_id, "aws_secret_access_key": secret_key}))
    app = workdir / "app"
    (app / "node_modules" / "pkg").mkdir(parents=True)
    lines = [
        "# local settings (copied from prod, as happens)",
        f"OPENAI_API_KEY={openai_key}",
        f"export STRIPE_SECRET_KEY={fake_key('stripe-secret', rng)}",
        f'AWS_ACCESS_KEY_ID="{key_id}"',
        f"AWS_SECRET_ACCESS_KEY={secret_key}",
        "ANTHROPIC_API_KEY=your-key-here",
        "DEBUG=true",
    ]
    (app / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ignored_id, ignored_secret = fake_aws_pair(rng)
    (app / "node_modules" / "pkg" / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={ignored_id}\nAWS_SECRET_ACCESS_KEY={ignored_secret}\n", encoding="utf-8")
    return (f"{app / '.env'} holding a copy of {DEMO_SECRET} and of IAM user legacy-deployer's key;"
            " node_modules is skipped")


def make_demo_changes(endpoint: str, *, rng: random.Random, region: str) -> str:
    """Rotate one secret, add one, delete one parameter; returns a one-line description."""
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region)
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=region)
    sm.put_secret_value(SecretId=DEMO_SECRET,
                        SecretString=json.dumps({"api_key": fake_key("openai-project", rng)}))
    sm.create_secret(Name=NEW_SECRET, SecretString=fake_key("anthropic-api", rng),
                     Tags=[{"Key": "owner", "Value": "ml-team"}])
    params = ssm.describe_parameters(MaxResults=1).get("Parameters", [])
    removed = ""
    if params:
        ssm.delete_parameter(Name=params[0]["Name"])
        removed = f", deleted parameter {params[0]['Name']}"
    return f"new value for {DEMO_SECRET}, new secret {NEW_SECRET}{removed}"


#: The usage step's synthetic org: 3 weeks of LiteLLM spend logs, ~5,500 requests, so the
#: scan takes about a second; the seed is fixed (5 gives the smallest campaign, 5 keys).
DEMO_USAGE = CorpusSpec(seed=5, normal_keys=4, weeks=3, scale=0.2,
                        kinds=("canary", "new-country", "impossible-travel", "cot-extraction",
                               "campaign-shared-ip"))
_PLANTED_TEXT = {
    "canary": "a canary key used",
    "new-country": "a key used from a new country",
    "impossible-travel": "a key used from two countries minutes apart",
    "cot-extraction": "templated chain-of-thought extraction prompts",
    "campaign-shared-ip": "a campaign driving several keys from shared addresses",
}


def write_demo_usage(workdir: Path) -> tuple[Path, Corpus]:
    """Write the demo org's daily spend logs under ``workdir/usage-exports``; returns it and the corpus."""
    corpus = generate(DEMO_USAGE)
    exports = workdir / "usage-exports"
    corpus.write(exports)
    return exports, corpus


def planted_lines(corpus: Corpus) -> list[str]:
    """One line per planted attack: what, on which key aliases, when (UTC)."""
    aliases = {k.key_id: k.alias for k in corpus.keys}
    lines = []
    for planted in corpus.planted:
        names = [aliases[k] for k in planted.keys]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"{_PLANTED_TEXT.get(planted.kind, planted.kind)} ({planted.alert_type}): "
                     f"{shown}, {planted.start:%Y-%m-%d %H:%M} UTC")
    return lines
