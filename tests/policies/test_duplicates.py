"""duplicate-key: copies joined by fingerprint or key id, one finding per copy."""

from __future__ import annotations

from keyguard.model import Fingerprint, KeyRecord, KeyStatus
from tests.policies import names, rec, run, run_config

A = Fingerprint("kg1:aaaa")
B = Fingerprint("kg1:bbbb")


def sm(name: str, region: str = "us-east-1", **kw: object) -> KeyRecord:
    return rec(name, region=region,
               location=f"arn:aws:secretsmanager:{region}:123456789012:secret:{name}", **kw)


def test_same_fingerprint_in_two_stores() -> None:
    keys = [sm("prod/a", fingerprint=A),
            rec("/prod/a", source="aws-ssm", location="arn:ssm:/prod/a", fingerprint=A),
            rec("OPENAI", source="dotenv", location="app/.env:3", anchor="app/.env", fingerprint=A),
            sm("prod/b", fingerprint=B)]
    found = run("duplicate-key", keys)
    assert names(found) == ["/prod/a", "OPENAI", "prod/a"]
    by_name = {f.key.name: f for f in found if f.key is not None}
    assert by_name["prod/a"].evidence["copies"] == 3
    assert str(by_name["prod/a"].evidence["others"]).split("\n") == ["app/.env:3", "arn:ssm:/prod/a"]


def test_key_id_joins_copies_but_not_the_issuer() -> None:
    iam = rec("ci/AKIA1", source="aws-iam", location="arn:aws:iam::1:user/ci:access-key/AKIA1",
              key_id="AKIA1")
    stored = sm("prod/deploy", key_id="AKIA1", fingerprint=A)
    assert run("duplicate-key", [iam, stored]) == []
    other = rec("/prod/deploy", source="aws-ssm", location="arn:ssm:/prod/deploy", key_id="AKIA1")
    assert names(run("duplicate-key", [iam, stored, other])) == ["/prod/deploy", "prod/deploy"]


def test_transitive_join() -> None:
    keys = [sm("x", fingerprint=A, key_id="AKIA2"), sm("y", key_id="AKIA2"),
            sm("z", fingerprint=A)]
    found = run("duplicate-key", keys)
    assert names(found) == ["x", "y", "z"]
    assert {f.evidence["copies"] for f in found} == {3}


def test_replicas_count_only_when_asked() -> None:
    keys = [sm("prod/a", "us-east-1", fingerprint=A), sm("prod/a", "eu-west-1", fingerprint=A)]
    assert run("duplicate-key", keys) == []
    assert names(run_config("duplicate-key", {"count_replicas": True}, keys)) == ["prod/a", "prod/a"]


def test_unique_and_deleted_copies_are_not_duplicates() -> None:
    keys = [sm("a", fingerprint=A), sm("b", fingerprint=B),
            sm("c", fingerprint=B, status=KeyStatus.DELETED), sm("d")]
    assert run("duplicate-key", keys) == []


def test_two_fields_of_one_secret_holding_the_same_value() -> None:
    keys = [sm("prod/multi", field="primary", fingerprint=A),
            sm("prod/multi", field="backup", fingerprint=A)]
    assert len(run("duplicate-key", keys)) == 2
