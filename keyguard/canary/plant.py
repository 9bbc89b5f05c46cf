"""Plant a canary's credential where a thief would look, and remove it again.

Locations: ``ssm:/path`` (a SecureString parameter), ``secretsmanager:name`` (a secret),
``file:path`` (``.env`` lines, appended to an existing file or a new 0600 file) and
``vault:mount/path`` (KV v2). In the cloud stores the value is JSON shaped like any real
credential (``{"aws_access_key_id": ..., "aws_secret_access_key": ...}``); nothing in a
planted name, description or tag says what it is. Existing parameters and secrets are
never overwritten: a canary must not destroy a real credential.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, assert_never

from keyguard.atomic import atomic_write
from keyguard.canary import Canary, CanaryKind, Planted
from keyguard.errors import SourceError, UsageError
from keyguard.secret import Secret

if TYPE_CHECKING:
    from keyguard.canary.aws import AwsCanaries

Scheme = Literal["ssm", "secretsmanager", "file", "vault"]
SCHEMES: tuple[Scheme, ...] = ("ssm", "secretsmanager", "file", "vault")

#: .env variable names per canary kind: (id variable, secret variable).
AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
LITELLM_ENV = "LITELLM_API_KEY"


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed ``--plant`` value."""

    scheme: Scheme
    target: str
    spec: str


def parse_location(spec: str) -> Location:
    """Parse ``scheme:target``.

    Raises:
        UsageError: unknown scheme, empty target, or an SSM name not starting with ``/``.

    """
    scheme, sep, target = spec.partition(":")
    target = target.strip()
    for known in SCHEMES:
        if sep and scheme == known and target:
            if known == "ssm" and not target.startswith("/"):
                raise UsageError(f"--plant {spec!r}: an SSM parameter name starts with '/'",
                                 "e.g. ssm:/app/prod/aws-credentials")
            if known == "vault" and "/" not in target.strip("/"):
                raise UsageError(f"--plant {spec!r}: give the KV v2 mount and the path",
                                 "e.g. vault:secret/app/aws")
            return Location(known, target, spec)
    raise UsageError(f"--plant {spec!r}: not a location",
                     "use ssm:/path, secretsmanager:NAME, file:PATH or vault:MOUNT/PATH")


@dataclass(frozen=True, slots=True)
class Credential:
    """The planted value as JSON fields and as .env lines; only :meth:`reveal_*` show it."""

    json_fields: tuple[tuple[str, str | Secret], ...]
    env_lines: tuple[tuple[str, str | Secret], ...]

    def reveal_json(self) -> str:
        """The JSON text written to a store; callers hand it to the store and drop it."""
        return json.dumps({k: _plain(v) for k, v in self.json_fields})

    def reveal_env(self) -> str:
        """The ``.env`` lines written to a file."""
        return "".join(f"{k}={_plain(v)}\n" for k, v in self.env_lines)


def aws_credential(key_id: str, secret: Secret) -> Credential:
    """An AWS access key shaped as people store one."""
    return Credential((("aws_access_key_id", key_id), ("aws_secret_access_key", secret)),
                      ((AWS_ENV[0], key_id), (AWS_ENV[1], secret)))


def litellm_credential(key: Secret, base_url: str) -> Credential:
    """A LiteLLM virtual key shaped as people store one (key plus the proxy's URL)."""
    return Credential((("api_key", key), ("base_url", base_url)), ((LITELLM_ENV, key),))


class Planter:
    """Writes and removes planted copies.

    ``aws(region)`` gives the AWS clients of a region (None: the canary's own region);
    copies are removed in the region they were planted in.
    """

    def __init__(self, aws: Callable[[str | None], AwsCanaries],
                 vault: Callable[[], VaultKv] | None = None,
                 cwd: Path | None = None) -> None:
        self._aws = aws
        self._vault = vault
        self._cwd = cwd or Path.cwd()

    def plant(self, location: Location, credential: Credential) -> Planted:
        """Write one copy; returns where it is.

        Raises:
            UsageError: the location already holds something (never overwritten).
            SourceError: the store failed.

        """
        from keyguard.canary.aws import aws_failure
        from keyguard.sources._aws import AWS_ERRORS

        scheme = location.scheme
        if scheme == "file":
            return self._plant_file(location, credential)
        if scheme == "vault":
            return self._vault_kv().plant(location, credential)
        aws = self._aws(None)
        try:
            if scheme == "ssm":
                ssm = aws.ssm()
                ssm.put_parameter(Name=location.target, Value=credential.reveal_json(),
                                  Type="SecureString", Overwrite=False)
                arn = ssm.get_parameter(Name=location.target)["Parameter"].get("ARN", "")
                return Planted(location.spec, arn or location.target, aws.region)
            if scheme == "secretsmanager":
                arn = aws.secretsmanager().create_secret(
                    Name=location.target, SecretString=credential.reveal_json())["ARN"]
                return Planted(location.spec, arn, aws.region)
        except AWS_ERRORS as exc:
            if _already_exists(exc):
                raise UsageError(f"--plant {location.spec}: already exists",
                                 "keyguard never overwrites a stored value; choose a new name") from None
            raise aws_failure(location.spec, exc) from None
        assert_never(scheme)

    def remove(self, planted: Planted, canary: Canary) -> None:
        """Remove one planted copy; one already gone is fine.

        Raises:
            SourceError: the store failed.

        """
        from keyguard.canary.aws import aws_failure
        from keyguard.sources._aws import AWS_ERRORS

        location = parse_location(planted.spec)
        if location.scheme == "file":
            _remove_from_file(Path(planted.ref), canary, planted.created_file)
            return
        if location.scheme == "vault":
            self._vault_kv().remove(planted)
            return
        aws = self._aws(planted.region)
        try:
            if location.scheme == "ssm":
                aws.ssm().delete_parameter(Name=location.target)
            else:
                aws.secretsmanager().delete_secret(SecretId=planted.ref,
                                                   ForceDeleteWithoutRecovery=True)
        except AWS_ERRORS as exc:
            if not _missing(exc):
                raise aws_failure(planted.spec, exc) from None

    def _vault_kv(self) -> VaultKv:
        if self._vault is None:
            raise UsageError("vault: locations need the Vault settings",
                             "set VAULT_ADDR and VAULT_TOKEN or [sources.vault]")
        return self._vault()

    def _plant_file(self, location: Location, credential: Credential) -> Planted:
        path = Path(location.target).expanduser()
        path = (path if path.is_absolute() else self._cwd / path).resolve()
        if not path.parent.is_dir():
            raise UsageError(f"--plant {location.spec}: directory {path.parent} does not exist")
        existed = path.exists()
        try:
            before = path.read_text(encoding="utf-8") if existed else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--plant {location.spec}: cannot read ({exc})") from None
        if before and not before.endswith("\n"):
            before += "\n"
        atomic_write(path, before + credential.reveal_env())  # keeps the mode; new: 0600
        return Planted(location.spec, str(path), None, created_file=not existed)


class VaultKv:
    """Plants into a KV v2 mount of Vault / OpenBao through an authenticated hvac client."""

    def __init__(self, client: object) -> None:
        self._client = client

    def plant(self, location: Location, credential: Credential) -> Planted:
        """Write the JSON fields as the secret's data; refuses a path that already exists.

        ``cas=0`` makes the write itself fail if the path appeared in the meantime.
        """
        import hvac.exceptions

        mount, _, path = location.target.strip("/").partition("/")
        kv = self._client.secrets.kv.v2  # type: ignore[attr-defined]
        with _vault_errors(location.spec):
            try:
                kv.read_secret_metadata(path=path, mount_point=mount)
            except hvac.exceptions.InvalidPath:
                pass  # free: the normal case
            else:
                raise UsageError(f"--plant {location.spec}: already exists",
                                 "keyguard never overwrites a stored value; choose a new path")
            kv.create_or_update_secret(path=path, secret=json.loads(credential.reveal_json()),
                                       mount_point=mount, cas=0)
        return Planted(location.spec, f"{mount}/{path}")

    def remove(self, planted: Planted) -> None:
        """Delete every version and the metadata of the planted path."""
        mount, _, path = planted.ref.partition("/")
        kv = self._client.secrets.kv.v2  # type: ignore[attr-defined]
        with _vault_errors(planted.spec):
            kv.delete_metadata_and_all_versions(path=path, mount_point=mount)


@contextmanager
def _vault_errors(spec: str) -> Iterator[None]:
    """Turn hvac/requests failures into one-line errors; their text never holds the value."""
    import hvac.exceptions
    import requests

    try:
        yield
    except hvac.exceptions.Forbidden:
        raise SourceError("vault", spec, f"{spec}: permission denied",
                          "the token needs create/read/delete on the path and its metadata") from None
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise SourceError("vault", spec, f"{spec}: Vault request failed ({type(exc).__name__})",
                          "check VAULT_ADDR, the token and that the mount is KV v2") from None


def _remove_from_file(path: Path, canary: Canary, created_file: bool) -> None:
    """Drop the canary's lines from a planted .env file (identified without the secret)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the planted file ({exc})") from None
    kept: list[str] = []
    skip_secret = False
    for line in lines:
        name, _, value = line.rstrip("\r\n").partition("=")
        if skip_secret and name == AWS_ENV[1]:
            skip_secret = False
            continue
        skip_secret = False
        if canary.kind is CanaryKind.AWS and name == AWS_ENV[0] and value == canary.identifier:
            skip_secret = True
            continue
        if (canary.kind is CanaryKind.LITELLM and name == LITELLM_ENV
                and hashlib.sha256(value.encode()).hexdigest() == canary.identifier):
            continue
        kept.append(line)
    if created_file and not "".join(kept).strip():
        path.unlink(missing_ok=True)
        return
    if len(kept) != len(lines):
        atomic_write(path, "".join(kept))  # keeps the file's mode


def _plain(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _already_exists(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("ParameterAlreadyExists", "ResourceExistsException")


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("ParameterNotFound", "ResourceNotFoundException")
