"""Secret-looking tokens never leave in alert text; public ids and ordinary names stay."""

from keyguard.classify import FORMATS
from keyguard.model import Alert, Severity
from keyguard.redact import scrub, scrub_alert

ANTHROPIC = "sk-ant-api03-" + "a1B2" * 23 + "xAA"  # pragma: allowlist secret
GITHUB = "ghp_" + "Z9y8" * 9  # pragma: allowlist secret


def test_full_keys_of_known_formats_are_redacted_with_their_kind() -> None:
    assert len(ANTHROPIC) == 13 + 93 + 2
    assert scrub(f"alias {ANTHROPIC} used") == "alias [redacted anthropic-api] used"
    assert scrub(f"({GITHUB}),") == "([redacted github-classic-pat]),"


def test_truncated_keys_and_glued_tokens_are_redacted_too() -> None:
    assert ANTHROPIC[:30] not in scrub(f"x {ANTHROPIC[:30]} y")
    assert ANTHROPIC not in scrub(f"alias:{ANTHROPIC}")
    assert scrub(f"alias:{ANTHROPIC}").startswith("alias:[redacted")


def test_public_ids_and_names_stay() -> None:
    text = ("Key AKIAIOSFODNN7EXAMPLE (sk-travel-1, apikey_01Rj2N8SVvo6BePZj99NhmiT) from "
            "203.0.113.9 via https://example.com/some/long/path at 2026-03-09T14:05:00Z")
    assert scrub(text) == text


def test_every_secret_format_with_a_prefix_is_caught_when_long() -> None:
    # a generated fake of every secret format (no name hint needed) is redacted
    from keyguard.classify import _compiled

    for fmt, _, hint in _compiled():
        if not fmt.secret or hint is not None:
            continue
        fake = "".join(p if isinstance(p, str) else p[0][0] * p[1] for p in fmt.shape)
        assert fake not in scrub(f"x {fake} y"), fmt.kind
    assert FORMATS


def test_scrub_alert_covers_subject_alias_message_and_evidence() -> None:
    alert = Alert(rule_id="geography", severity=Severity.HIGH, subject=ANTHROPIC,
                  message=f"Key {ANTHROPIC}: new country", key_alias=f"prod {GITHUB}",
                  evidence={"user_agents": f"bot/{GITHUB}", "events": 3})
    clean = scrub_alert(alert)
    text = repr(clean)
    assert ANTHROPIC not in text
    assert GITHUB not in text
    assert clean.evidence["events"] == 3
    assert clean.subject == "[redacted anthropic-api]"
