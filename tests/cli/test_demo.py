"""`keyguard demo` runs the whole tour on its own sandbox, in a fresh process, and cleans up."""

import json
import os
import subprocess
import sys
from pathlib import Path

from keyguard.demo_scenario import DEMO_USAGE
from keyguard.usage.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # NOTE: a subprocess, because moto's backends are per process and the test session
    # already runs a seeded server; a fresh HOME proves the demo touches nothing of the user's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), TMPDIR=str(tmp_path),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return subprocess.run([sys.executable, "-m", "keyguard", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_demo_tour(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    out, err = result.stdout, result.stderr
    for needle in ("aws-secretsmanager", "aws-ssm", "aws-iam", "dotenv", "openai-project",
                   "anthropic-admin", "kg1:"):
        assert needle in out
    for step in ("1. Started a local AWS sandbox", "2. Seeded", "4. What to look at",
                 "admin or root scope", "plaintext keys in .env files",
                 "same secret stored in several places", "IAM keys with copies",
                 "Demo finished in"):
        assert step in err
    # step 5b: a rotation dry run from the real planner: an IAM key due, with its copies
    dry_run = err.split("5b. `keyguard rotate plan`", 1)[1].split("\n6. ", 1)[0]
    assert "rotation plan " in dry_run
    assert "ROTATE " in dry_run
    assert "[aws-iam]" in dry_run
    assert "steps: prepare -> create -> store:0 -> verify -> deactivate-old" in dry_run
    assert "copy:  aws-secretsmanager" in dry_run
    assert "Changes since the last snapshot" in out
    assert "prod/app/anthropic" in out
    # step 7: the real usage scan on the synthetic org, alerts table on stdout
    for step in ("7. `keyguard usage scan` on 3 weeks", "registered as a canary",
                 "gate (high and above): FAIL", "Planted in this export:",
                 "What to look at, per alert type:", "Exit code 1"):
        assert step in err
    corpus = generate(DEMO_USAGE)
    aliases = {k.key_id: k.alias for k in corpus.keys}
    canary = corpus.canaries[0]
    new_country = next(p.keys[0] for p in corpus.planted if p.kind == "new-country")
    for key, kind in ((canary, "canary"), (new_country, "geography")):
        block = out.split(f"KEY {key} ({aliases[key]})", 1)[1].split("\nKEY ", 1)[0]
        assert kind in block
    assert "Traceback" not in err
    # nothing of the user's was created: no state, no fingerprint key file, no temp left over
    assert not (tmp_path / "data").exists()
    assert not list(tmp_path.glob("keyguard-demo-*"))


def test_demo_json_is_a_valid_inventory(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--quiet", "demo", "--format", "json", "--seed", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)  # stdout is exactly the inventory document
    assert doc["schema_version"] == 1
    assert len(doc["keys"]) > 50
    assert doc["errors"] == []
    assert "Changes since the last snapshot" in result.stderr  # later steps go to stderr
    assert "KEY " in result.stderr  # the usage alerts table too
    assert "Demo finished" not in result.stderr  # --quiet drops the narration
