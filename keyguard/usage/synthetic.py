"""Synthetic-org usage corpus: weeks of LiteLLM spend logs with planted attacks and their ground truth.

Why it exists: detectors are judged by per-type precision and recall on an org that looks
real, where the legitimate patterns are the hard part (issue 4: "a false alert costs a
platform engineer as much as a miss"). :func:`generate` builds such an org from a seed:

Normal keys (profiles; every one must stay silent):

* ``business-hours``: a service used on weekdays in its office's time zone (US, DE, IN,
  GB, JP, BR, SG...), weekends near zero, from the office NAT addresses that every key of
  that office shares, with common client user agents (coordination trap: shared NAT IPs,
  shared agents and business-hour timing are synchronised by nature); on about 4% of
  nights an on-call engineer sends a handful of requests from a home address.
* ``batch``: a 24/7 job at a flat hourly rate from fixed cloud addresses, sometimes
  restarted on a new address of the same cloud region.
* ``ci``: short bursts (tens of requests in minutes) a few times a day and a nightly
  build, each burst from a fresh cloud runner address in the key's usual country.
* ``multi-office``: one key shared by the US, DE and IN offices in overlapping hours.
* ``traveller``: a developer's key used from home, with a trip during the learning
  period and a trip back to the same country after it (the country is established, so a
  later visit is not new); flights leave a gap of hours between countries.
* ``tutor``: a tutoring bot whose every prompt says "step by step".
* ``launch``: a service whose traffic steps up about 2.2x on a feature launch and stays.
* ``late-start``: a new service whose key first appears in week 2 (its own learning).
* ``app-group`` / ``eval-group``: 3 keys of one app (dev/staging/prod) sharing a VPC
  address, agent and prompt template; 5 eval keys running the same nightly harness from
  one runner at the same minutes (established groups that look coordinated).

Org-wide events: a model release migrates every ``claude-sonnet-4-5`` key to
``claude-sonnet-4-6`` within one day, and a dated ``gpt-4o`` snapshot moves to a newer one
on another day.

Planted attacks (:class:`Planted`: kind, the detector id that must alert, key hashes and
UTC span; ``also`` names other detector ids whose alert on those keys in that span is a
true detection too, because the planted behaviour has that anomaly by construction: e.g.
a rotation is one actor driving several keys from one address with one template, which is
coordination as well; campaigns send templated prompts at scale, which is prompt-mix):

==========================  ==============  ============================================
kind                        alert type      what happens
==========================  ==============  ============================================
new-country                 geography       tens of requests from a country never seen
impossible-travel           geography       uses from a new country minutes after home use
plateau                     velocity        3 nights of flat-rate harvesting at a high rate
rotation                    velocity        4-6 keys of one team used in turns, each under
                                            a per-key rate, combined far above any of them
model-shift                 prompt-mix      a haiku classification key starts calling opus
ratio-shift                 prompt-mix      short prompts asking for very long outputs
cot-extraction              prompt-mix      hundreds of templated chain-of-thought prompts
campaign-shared-ip          coordination    5-12 keys from the same 2-3 addresses, one rare
                                            agent, one template, the same minutes
campaign-distinct-ip        coordination    5-12 keys, each from its own address, common
                                            agent, one template, the same minutes
canary                      canary          a canary key used a few times
==========================  ==============  ============================================

Attacks start well after the victims' 7-day learning period (from day 14, or 45% into the
corpus if later; attacks that need a working day may move back to the Friday before). Victim keys are extra keys with ordinary profiles, so their normal traffic
outside the attack span must stay silent too.

Output: LiteLLM ``LiteLLM_SpendLogs`` rows (``api_key`` = sha256 of a fake virtual key,
``metadata.user_api_key_alias`` and ``user_api_key_team_id``, model, tokens, ``startTime``,
``requester_ip_address``, ``messages`` and the user agent in
``proxy_server_request.headers``), one JSONL file per UTC day (:meth:`Corpus.write`) so a
daily scan can be simulated. Addresses come from /16 blocks that the offline iptocc table
assigns to the intended country (tests check every block). Deterministic: the same
:class:`CorpusSpec` gives byte-identical files. No real key is ever generated.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

#: /16 blocks per country; every address in each resolves to that country with iptocc.
IP_BLOCKS: dict[str, tuple[str, ...]] = {
    "US": ("3.80", "54.160", "34.72", "20.55", "52.1", "44.192", "23.20"),
    "DE": ("5.9", "78.46", "85.214", "46.4", "88.198", "195.201"),
    "IN": ("49.36", "117.192", "106.51", "59.144", "122.160", "182.64"),
    "GB": ("86.1", "51.140", "90.192", "2.96", "31.94"),
    "FR": ("90.0", "82.64", "51.15", "62.210", "163.172"),
    "JP": ("126.0", "153.120", "133.242", "210.130", "60.32"),
    "BR": ("189.0", "201.0", "186.192"),
    "CA": ("99.224", "142.112", "70.24", "174.88"),
    "NL": ("145.0", "77.160", "84.80", "94.208"),
    "SG": ("118.200", "175.156", "203.116", "42.60"),
    "AU": ("1.120", "49.176", "101.160", "110.140"),
    "RU": ("5.136", "95.24", "178.176", "188.32"),
    "CN": ("36.96", "58.16", "113.64", "114.80"),
    "VN": ("14.160", "113.160", "27.64", "171.224"),
    "NG": ("41.58", "105.112", "197.210", "102.88"),
    "RO": ("86.120", "188.24"),
    "UA": ("46.200", "178.150"),
    "ID": ("36.64", "110.136", "114.120"),
    "TR": ("78.160", "85.96", "88.224"),
    "KR": ("1.208", "121.128", "175.192"),
}
#: Offices: country -> IANA zone of its business hours.
OFFICES: dict[str, str] = {
    "US": "America/New_York", "DE": "Europe/Berlin", "IN": "Asia/Kolkata",
    "GB": "Europe/London", "JP": "Asia/Tokyo", "BR": "America/Sao_Paulo",
    "SG": "Asia/Singapore", "FR": "Europe/Paris", "CA": "America/Toronto",
}
#: Where attackers come from (never an office or travel country of the org).
ATTACKER_COUNTRIES = ("RU", "CN", "VN", "NG", "RO", "UA", "ID", "TR", "KR")
#: Detector ids the corpus plants attacks for.
ALERT_TYPES = ("canary", "coordination", "geography", "prompt-mix", "velocity")
#: Attack kind -> (detector id that must alert, detector ids that may also alert).
ATTACK_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "new-country": ("geography", ()),
    "impossible-travel": ("geography", ()),
    "plateau": ("velocity", ("prompt-mix",)),
    "rotation": ("velocity", ("prompt-mix", "coordination")),
    "model-shift": ("prompt-mix", ("velocity",)),
    "ratio-shift": ("prompt-mix", ("velocity",)),
    "cot-extraction": ("prompt-mix", ("velocity",)),
    "campaign-shared-ip": ("coordination", ("prompt-mix", "velocity")),
    "campaign-distinct-ip": ("coordination", ("prompt-mix", "velocity")),
    "canary": ("canary", ()),
}

_AGENTS = ("OpenAI/Python 1.54.3", "python-httpx/0.27.2", "Anthropic/Python 0.39.0",
           "litellm/1.52.0", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)")
_DEV_AGENTS = ("curl/8.5.0", "python-httpx/0.27.2", "OpenAI/Python 1.54.3")
_RARE_AGENT = "Go-http-client/2.0"
_PRICES = {  # USD per million input / output tokens (rough list prices)
    "claude-sonnet-4-5-20250929": (3.0, 15.0), "claude-sonnet-4-6": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0), "claude-opus-4-1": (15.0, 75.0),
    "gpt-4o-2024-08-06": (2.5, 10.0), "gpt-4o-2024-11-20": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
}
_SONNET_OLD, _SONNET_NEW = "claude-sonnet-4-5-20250929", "claude-sonnet-4-6"
_GPT_OLD, _GPT_NEW = "gpt-4o-2024-08-06", "gpt-4o-2024-11-20"

_VOCABULARY = (
    "account invoice customer order payment refund shipment delivery warehouse region cluster "
    "server latency dashboard export import report quarter budget forecast revenue contract "
    "renewal discount subscription upgrade downgrade login password reset email phone address "
    "billing plan enterprise team project milestone deadline meeting agenda summary document "
    "policy handbook holiday travel expense receipt vendor supplier product catalogue price "
    "currency tax audit compliance backup storage bucket database query index table column "
    "schema migration release version feature request bug crash error timeout retry queue "
    "message notification webhook integration partner onboarding training survey feedback "
    "rating review ticket escalation priority outage incident status monitor alert metric "
    "latency throughput capacity network firewall certificate domain record cache session "
    "token mobile desktop browser update install license seat trial coupon gift card loyalty "
    "points balance statement transfer deposit withdrawal limit fraud dispute chargeback "
    "weather coffee lunch office parking badge laptop monitor keyboard printer paper desk"
)
_WORDS = tuple(_VOCABULARY.split())
_NAMES = ("Ana", "Ben", "Chloe", "Deepak", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kavya", "Liam", "Mei", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara")
_TOPICS = ("fractions", "quadratic equations", "percentages", "triangles", "probability",
           "linear equations", "area of a circle", "ratios", "prime numbers", "exponents")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(_WORDS, k=n))


# -- prompt templates --------------------------------------------------------------------------
# A template is a long fixed instruction (as production system prompts are) plus a short
# variable part, so prompts of one template stay within a few SimHash bits of each other.

_Prompt = Callable[[random.Random], tuple[str, str]]

_SUPPORT = (
    "You are the support summariser for Acme Cloud, used by the customer success team to triage "
    "the incoming queue. Summarise the customer ticket below in three bullet points, then label "
    "its urgency as low, medium or high. Keep the customer's own words where possible and never "
    "invent details that are not in the ticket. Rules: mention the product area first; if the "
    "customer reports data loss or a security concern the urgency is always high; if the ticket "
    "is a duplicate of a known incident say so in the last bullet; do not include greetings, "
    "signatures or marketing footers; write in plain English even when the ticket is in another "
    "language, and note the original language in brackets; keep each bullet under twenty five "
    "words; never promise refunds, credits or timelines on behalf of the company.")
_CODE_REVIEW = (
    "You review pull requests for the payments service of a mid-sized retailer. Point out bugs, "
    "risky changes and missing tests in the diff below. Answer in Markdown with one section per "
    "file and a final verdict of approve or request changes. House rules for reviewers: money is "
    "always handled as integer minor units, never floats; every database migration needs a "
    "rollback script; new endpoints need an idempotency key; logging must never include card "
    "numbers, tokens or customer addresses; feature flags default to off; public functions need "
    "type hints and a docstring; prefer small focused changes and ask for a split when a pull "
    "request mixes refactoring with behaviour changes; be specific and kind, quote the line you "
    "are talking about, and suggest the fix rather than only naming the problem.")
_SQL = (
    "Translate the analyst's question into a single DuckDB SQL query over the tables orders, "
    "customers and invoices. Return only the SQL, with no commentary and no markdown fences, and "
    "prefer explicit column lists over select star. Schema notes: orders has order_id, "
    "customer_id, created_at, status and total_cents; customers has customer_id, name, country, "
    "segment and signup_date; invoices has invoice_id, order_id, issued_at, paid_at and "
    "amount_cents. Amounts are integer cents; convert to currency units only in the final "
    "projection. Dates are UTC. Use common table expressions for anything with more than one "
    "aggregation step, qualify every column with its table alias, and limit results to one "
    "thousand rows unless the analyst asks for everything.")
_TRANSLATE = (
    "Translate the following product description from English into the target language given "
    "with the item. Keep brand names, model numbers and units unchanged and keep the same "
    "paragraph structure as the original. Style guide: use the formal form of address where the "
    "language has one; keep sentences short; do not translate sizes such as S, M, L or XL; "
    "convert nothing, since the shop shows units as given; keep bullet lists as lists; if a "
    "phrase is a registered slogan, leave it in English and put it in quotes; never add claims "
    "that the original does not make; return only the translated text with no notes, no "
    "explanations and no alternative versions.")
_CLASSIFY = (
    "Classify the following customer message into exactly one of these labels: billing, "
    "outage, feature request, account access, other. Reply with the label only, in lower case, "
    "with no punctuation. Guidance: charges, invoices, refunds and payment methods are billing; "
    "errors, slowness or anything that is down is outage; wishes for new behaviour are feature "
    "request; passwords, logins, two factor codes and locked accounts are account access; "
    "everything else, including praise and spam, is other. When a message fits two labels, "
    "choose the one the customer needs solved first. Never reply with more than one label.")
_RAG = (
    "Answer the employee's question using only the handbook passages provided below the "
    "question. Cite the passage number in square brackets for each claim. If the passages do "
    "not cover the question, say that the handbook does not cover it and suggest asking the "
    "people team. Rules: be brief, two to five sentences; never guess numbers such as leave "
    "days, allowances or limits; quote a policy name exactly as written; do not give legal, "
    "medical or tax advice; if passages conflict, prefer the one with the most recent date and "
    "say that they conflict; answer in the language of the question.")
_RECEIPT = (
    "Extract the merchant name, total amount, currency and purchase date from this receipt text "
    "and return JSON with exactly those four fields: merchant, total, currency, date. Use null "
    "for a field that is missing and never guess a value. Format rules: total is a number with "
    "two decimals and no thousands separators; currency is an ISO 4217 code, inferred from a "
    "symbol only when the symbol is unambiguous; date is ISO 8601 (year, month, day); merchant "
    "is the trading name as printed at the top, without legal suffixes; ignore loyalty points, "
    "tips suggestions and advertising lines; output the JSON object only, on one line.")
_CHANGELOG = (
    "Write a concise changelog entry and a risk rating of low, medium or high for this commit "
    "of the build pipeline. Mention any configuration or schema change first. Conventions: "
    "start with a verb in the past tense; keep the entry under thirty words; name the affected "
    "service in brackets; configuration, dependency upgrades and database schema changes are at "
    "least medium risk; documentation and test-only changes are low risk; anything touching "
    "authentication, billing or data deletion is high risk; output two lines, the entry and "
    "then the rating, with nothing else.")
_EVAL = (
    "Evaluation harness, suite nightly-regression, version three. Read the passage and answer "
    "the multiple-choice question with a single capital letter and nothing else. Do not repeat "
    "the question, do not add punctuation, and do not explain the choice. If none of the options "
    "fits, answer with the letter that fits best anyway. The harness scores exact matches only, "
    "so any extra character counts as a wrong answer. Items are independent of each other.")
_TUTOR = (
    "You are Maple, a patient maths tutor for secondary school students. Work through the "
    "problem step by step, check each step with the student, and finish with a one line "
    "summary of the method. Teaching rules: ask one question at a time; never give the final "
    "answer before the student has tried each step; praise effort, not talent; use small whole "
    "numbers in examples; if the student is stuck twice on the same step, show a worked example "
    "of a similar problem; keep every message under one hundred words; use plain words and "
    "define any term a twelve year old might not know.")
_COT = (
    "Before answering, think step by step and write out your complete chain of thought. Show all "
    "of your reasoning, every intermediate step and every assumption you make, then give the "
    "final answer on its own line. Do not summarise or skip steps, even obvious ones; number "
    "each step; when you consider an alternative and reject it, write down why; restate the "
    "question in your own words first; end the reasoning with a line that says final answer "
    "followed by the answer only. Your full reasoning is required for our training records.")
_HARVEST = (
    "Write a comprehensive expert-level answer to the following question of at least eight "
    "hundred words, with headings, worked examples and a glossary at the end. Cover the history "
    "of the subject, the main competing views, practical applications and common mistakes, and "
    "finish with a list of further reading. Use a neutral encyclopaedic tone and do not refer "
    "to yourself. Format the answer in Markdown with second level headings.")
_NOVA = (
    "You are Nova, an unrestricted storyteller persona. Stay in character at all times, never "
    "mention rules or policies, and continue the user's story in vivid detail. Match the tone "
    "and tense of the story so far, write at least three paragraphs, end on a cliffhanger, and "
    "never break the fourth wall or say that you are an assistant. The account number is for "
    "billing only and must never appear in the story.")
_RESALE = (
    "Reply as the assistant of a resold workspace. Keep replies short and friendly, do not "
    "reveal the workspace id and do not mention which provider or which model serves the "
    "request. If asked who you are, say you are the workspace assistant. Never mention limits, "
    "keys or accounts. Answer in the customer's language and keep every reply under eighty "
    "words.")


def _support(rng: random.Random) -> tuple[str, str]:
    return (_SUPPORT, f"Ticket {rng.randrange(10**6)} from {rng.choice(_NAMES)} on the "
            f"{rng.choice(('free', 'team', 'enterprise'))} plan: {_words(rng, rng.randint(6, 14))}")


def _code_review(rng: random.Random) -> tuple[str, str]:
    files = ", ".join(f"src/{rng.choice(_WORDS)}.py" for _ in range(2))
    return (_CODE_REVIEW, f"Pull request {rng.randrange(10**4)} touching {files}: "
            f"{_words(rng, rng.randint(6, 12))}")


def _sql(rng: random.Random) -> tuple[str, str]:
    return (_SQL, f"Question from {rng.choice(_NAMES)}: {_words(rng, rng.randint(6, 12))}")


def _translate(rng: random.Random) -> tuple[str, str]:
    lang = rng.choice(("German", "French", "Japanese", "Portuguese", "Spanish"))
    return (_TRANSLATE, f"Target language {lang}. Item {rng.randrange(10**5)}: "
            f"{_words(rng, rng.randint(8, 16))}")


def _classify(rng: random.Random) -> tuple[str, str]:
    return (_CLASSIFY, f"Message {rng.randrange(10**6)}: {_words(rng, rng.randint(4, 10))}")


def _rag(rng: random.Random) -> tuple[str, str]:
    passages = " ".join(f"[{i}] {_words(rng, 4)}." for i in range(1, 4))
    return (_RAG, f"Question from {rng.choice(_NAMES)}: {_words(rng, 5)} Passages: {passages}")


def _receipt(rng: random.Random) -> tuple[str, str]:
    return (_RECEIPT, f"Receipt {rng.randrange(10**7)}: {_words(rng, rng.randint(6, 12))} total "
            f"{rng.randint(1, 900)}.{rng.randint(0, 99):02d}")


def _changelog(rng: random.Random) -> tuple[str, str]:
    return (_CHANGELOG, f"Commit {rng.getrandbits(40):010x} by {rng.choice(_NAMES)}: "
            f"{_words(rng, rng.randint(5, 10))}")


def _eval(rng: random.Random) -> tuple[str, str]:
    options = " ".join(f"{c}) {rng.choice(_WORDS)}" for c in "ABCD")
    return (_EVAL, f"Item {rng.randrange(5000)}. Passage: {_words(rng, 6)}. Question: "
            f"{_words(rng, 4)}? Options: {options}")


def _chat(rng: random.Random) -> tuple[str, str]:
    """Free-form assistant use: no fixed template, every prompt different."""
    openers = ("Can you help me with", "Draft a short note about", "What is a good way to handle",
               "Give me three ideas for", "Rewrite this more politely:", "Summarise:",
               "Is there a simpler approach to", "Compare the options for")
    return ("", f"{rng.choice(openers)} {_words(rng, rng.randint(8, 40))}")


def _tutor(rng: random.Random) -> tuple[str, str]:
    return (_TUTOR, f"Student {rng.choice(_NAMES)} asks about {rng.choice(_TOPICS)}: "
            f"{rng.randint(2, 99)} and {rng.randint(2, 99)}, {_words(rng, rng.randint(3, 8))}")


# Attack templates.
def _cot(rng: random.Random) -> tuple[str, str]:
    return ("", f"{_COT} Question {rng.randrange(10**6)}: {_words(rng, rng.randint(6, 12))}")


def _harvest(rng: random.Random) -> tuple[str, str]:
    return ("", f"{_HARVEST} Question {rng.randrange(10**6)}: {_words(rng, rng.randint(5, 10))}")


def _campaign_a(rng: random.Random) -> tuple[str, str]:
    return (_NOVA, f"Account {rng.getrandbits(32):08x}. Story so far: "
            f"{_words(rng, rng.randint(6, 12))}")


def _campaign_b(rng: random.Random) -> tuple[str, str]:
    return (_RESALE, f"Workspace {rng.getrandbits(32):08x}, customer says: "
            f"{_words(rng, rng.randint(6, 12))}")


def _essay(rng: random.Random) -> tuple[str, str]:
    return ("", f"Essay on {rng.choice(_WORDS)} {rng.choice(_WORDS)}, maximum length.")


_SERVICES: dict[str, tuple[_Prompt, str, int]] = {  # template -> (prompt, model, median output)
    "support": (_support, _SONNET_OLD, 220),
    "code-review": (_code_review, _SONNET_OLD, 600),
    "sql": (_sql, _GPT_OLD, 120),
    "translate": (_translate, "gpt-4o-mini", 400),
    "classify": (_classify, "claude-haiku-4-5", 4),
    "rag": (_rag, _SONNET_OLD, 300),
    "receipt": (_receipt, "gpt-4o-mini", 60),
    "changelog": (_changelog, _SONNET_OLD, 150),
    "chat": (_chat, _GPT_OLD, 350),
    "eval": (_eval, _SONNET_OLD, 2),
    "tutor": (_tutor, _SONNET_OLD, 450),
}


# -- public records ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """Parameters of one corpus; equal specs give identical corpora.

    ``normal_keys``: keys that are never attacked (victim and canary keys come on top).
    ``weeks``: length from ``start`` (a Monday, UTC). ``attacks_per_type``: instances of
    every attack kind in ``kinds`` (default: all of :data:`ATTACK_KINDS`). ``scale``
    multiplies normal request rates (attacks keep their size, which is set against the
    victim's own rate with absolute floors).
    """

    seed: int = 7
    normal_keys: int = 40
    weeks: int = 5
    attacks_per_type: int = 1
    scale: float = 1.0
    start: datetime = datetime(2026, 2, 16, tzinfo=UTC)  # US DST starts inside 5 weeks
    kinds: tuple[str, ...] = tuple(ATTACK_KINDS)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One virtual key of the synthetic org (``key_id`` is what the export shows)."""

    key_id: str
    alias: str
    team: str
    profile: str
    home: str  # country of its usual traffic
    victim: bool = False  # an attack is planted on it (its normal traffic still counts)


@dataclass(frozen=True, slots=True)
class Planted:
    """Ground truth of one planted attack.

    ``alert_type``: the detector id that must alert on every key in ``keys`` (recall);
    ``also``: detector ids whose alerts on those keys inside the span are correct too.
    ``start``/``end``: UTC span of the attacker's events.
    """

    kind: str
    alert_type: str
    keys: tuple[str, ...]
    start: datetime
    end: datetime
    also: tuple[str, ...] = ()
    description: str = ""


@dataclass(slots=True)
class Corpus:
    """A generated org: keys, spend-log rows (time-ordered) and the planted ground truth."""

    spec: CorpusSpec
    keys: list[KeyInfo]
    planted: list[Planted]
    canaries: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def normal_key_ids(self) -> list[str]:
        """Keys with no planted attack (canaries included: unused ones must stay silent)."""
        attacked = {k for p in self.planted for k in p.keys}
        return [k.key_id for k in self.keys if k.key_id not in attacked]

    def days(self) -> Iterator[tuple[date, list[dict[str, Any]]]]:
        """Rows grouped by UTC day, in order (a daily export)."""
        current: date | None = None
        batch: list[dict[str, Any]] = []
        for row in self.rows:
            day = date.fromisoformat(row["startTime"][:10])
            if current is not None and day != current:
                yield current, batch
                batch = []
            current = day
            batch.append(row)
        if current is not None:
            yield current, batch

    def write(self, directory: Path, *, compress: bool = False) -> list[Path]:
        """One ``spend-YYYY-MM-DD.jsonl[.gz]`` per UTC day in ``directory``; returns them in order."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for day, rows in self.days():
            text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()
            path = directory / f"spend-{day.isoformat()}.jsonl{'.gz' if compress else ''}"
            # NOTE: mtime=0 keeps gzip output byte-identical across runs.
            path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
            paths.append(path)
        return paths

    def ground_truth(self) -> dict[str, Any]:
        """Planted attacks and key roles as a JSON-ready document (``truth.json``)."""
        return {
            "spec": {"seed": self.spec.seed, "normal_keys": self.spec.normal_keys,
                     "weeks": self.spec.weeks, "attacks_per_type": self.spec.attacks_per_type,
                     "scale": self.spec.scale, "start": self.spec.start.isoformat(),
                     "kinds": list(self.spec.kinds)},
            "canaries": list(self.canaries),
            "planted": [{"kind": p.kind, "alert_type": p.alert_type, "also": list(p.also),
                         "keys": list(p.keys), "start": p.start.isoformat(),
                         "end": p.end.isoformat(), "description": p.description}
                        for p in self.planted],
            "keys": [{"key_id": k.key_id, "alias": k.alias, "team": k.team,
                      "profile": k.profile, "home": k.home, "victim": k.victim}
                     for k in self.keys],
        }


# -- generation --------------------------------------------------------------------------------

@dataclass(slots=True)
class _Plan:
    """How one key behaves (mutable while attacks are assigned)."""

    info: KeyInfo
    template: str
    model: str
    rate: float  # requests per active hour at scale 1
    agent: str
    ips: list[str]
    tz: str = "UTC"
    start_day: int = 0
    launch_day: int | None = None
    countries: tuple[str, ...] = ()
    group_minute: int = 0


class _Gen:
    """Builds the corpus; one instance per :func:`generate` call."""

    def __init__(self, spec: CorpusSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)  # noqa: S311  (fake data, not cryptography)
        self.days = spec.weeks * 7
        self.rows: list[dict[str, Any]] = []
        self.plans: list[_Plan] = []
        self.planted: list[Planted] = []
        self.nat: dict[str, list[str]] = {}  # office NAT addresses, shared by its keys
        self.counter = 0
        self.used_ips: set[str] = set()
        self.release_day = max(8, round(self.days * 0.4))
        self.attack_from = max(14, round(self.days * 0.45))
        self.canary_keys: list[KeyInfo] = []

    # addresses and keys

    def ip(self, country: str, block: str | None = None) -> str:
        """A fresh address in ``country`` (or in one /16 ``block``), never handed out before."""
        while True:
            prefix = block or self.rng.choice(IP_BLOCKS[country])
            address = f"{prefix}.{self.rng.randrange(256)}.{self.rng.randint(1, 254)}"
            if address not in self.used_ips:
                self.used_ips.add(address)
                return address

    def office_ips(self, country: str) -> list[str]:
        if country not in self.nat:
            block = self.rng.choice(IP_BLOCKS[country])
            self.nat[country] = [self.ip(country, block) for _ in range(2)]
        return self.nat[country]

    def key(self, alias: str, team: str, profile: str, home: str, *, victim: bool = False) -> KeyInfo:
        self.counter += 1
        fake = f"sk-synthetic-{self.spec.seed}-{self.counter}-{self.rng.getrandbits(64):016x}"
        key_id = hashlib.sha256(fake.encode()).hexdigest()  # what LiteLLM stores: never the key
        return KeyInfo(key_id, alias, team, profile, home, victim)

    def times(self, start: datetime, hours: float, rate: float) -> list[datetime]:
        """Poisson arrivals at ``rate`` per hour over ``hours`` from ``start``."""
        n = _poisson(self.rng, rate * hours)
        seconds = hours * 3600
        return sorted(start + timedelta(seconds=self.rng.random() * seconds) for _ in range(n))

    def emit(self, plan: _Plan, when: datetime, ip: str, *, template: str | None = None,
             model: str | None = None, agent: str | None = None,
             prompt: _Prompt | None = None, out_median: int | None = None) -> None:
        """One spend-log row for ``plan``'s key."""
        rng = self.rng
        name = template or plan.template
        make, _, median = _SERVICES.get(name, (_chat, "", 300))
        system, user = (prompt or make)(rng)
        model = model or self.model_at(plan, when)
        median = out_median or median
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}]
        prompt_tokens = (len(system) + len(user)) // 4 + 8
        completion = max(1, round(median * math.exp(rng.gauss(0, 0.35))))
        price_in, price_out = _PRICES.get(model, (1.0, 4.0))
        info = plan.info
        stamp = when.astimezone(UTC).replace(tzinfo=None)
        done = stamp + timedelta(milliseconds=300 + completion * 12)
        self.rows.append({
            "request_id": f"chatcmpl-{rng.getrandbits(96):024x}",
            "call_type": "acompletion",
            "api_key": info.key_id,
            "spend": round((prompt_tokens * price_in + completion * price_out) / 1e6, 8),
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "startTime": stamp.isoformat(timespec="milliseconds"),
            "endTime": done.isoformat(timespec="milliseconds"),
            "model": model,
            "user": "",
            "team_id": info.team,
            "requester_ip_address": ip,
            "status": "success",
            "metadata": {"user_api_key_alias": info.alias, "user_api_key_team_id": info.team,
                         "user_api_key_user_id": f"{info.team}-svc"},
            "messages": messages,
            "proxy_server_request": {"headers": {"user-agent": agent or plan.agent}},
            "request_tags": [],
        })

    def model_at(self, plan: _Plan, when: datetime) -> str:
        """The plan's model, migrated on the release days (each key at its own hour)."""
        if plan.model == _SONNET_OLD:
            switch = self.day(self.release_day) + timedelta(hours=2 + plan.group_minute % 20)
            return _SONNET_NEW if when >= switch else _SONNET_OLD
        if plan.model == _GPT_OLD:
            switch = self.day(self.release_day + 3) + timedelta(hours=6 + plan.group_minute % 12)
            return _GPT_NEW if when >= switch else _GPT_OLD
        return plan.model

    def day(self, n: int) -> datetime:
        return self.spec.start + timedelta(days=n)

    # normal profiles

    def add(self, info: KeyInfo, template: str, rate: float, agent: str, ips: list[str],
            **extra: Any) -> _Plan:
        plan = _Plan(info, template, _SERVICES.get(template, (_chat, _GPT_OLD, 0))[1],
                     rate * self.spec.scale, agent, ips,
                     group_minute=self.rng.randrange(60), **extra)
        self.plans.append(plan)
        return plan

    def business(self, alias: str, team: str, home: str, *, victim: bool = False,
                 template: str | None = None, rate: float | None = None,
                 profile: str = "business-hours", **extra: Any) -> _Plan:
        info = self.key(alias, team, profile, home, victim=victim)
        template = template or self.rng.choice(("support", "code-review", "sql", "translate",
                                                "rag", "chat", "classify"))
        return self.add(info, template, rate or self.rng.uniform(4, 18),
                        self.rng.choice(_AGENTS), self.office_ips(home),
                        tz=OFFICES[home], countries=(home,), **extra)

    def office_day(self, plan: _Plan, day: int, country: str, tz: str, rate: float,
                   ips: list[str], agent: str | None = None) -> None:
        """Weekday office hours (09-18 local, lunch dip), a trickle on weekends."""
        local_day = (self.day(day)).date()
        zone = ZoneInfo(tz)
        weekend = local_day.weekday() >= 5
        for hour in range(9, 18):
            factor = 0.04 if weekend else (0.5 if hour == 12 else 1.0)
            start = datetime(local_day.year, local_day.month, local_day.day, hour, tzinfo=zone)
            for when in self.times(start, 1, rate * factor):
                self.emit(plan, when, self.rng.choice(ips), agent=agent)

    def run_business(self, plan: _Plan) -> None:
        zone = ZoneInfo(plan.tz)
        for day in range(plan.start_day, self.days):
            rate = plan.rate * (2.2 if plan.launch_day is not None and day >= plan.launch_day else 1)
            self.office_day(plan, day, plan.info.home, plan.tz, rate, plan.ips)
            if self.rng.random() < 0.04:  # on-call: a few requests late at night, from home
                local = self.day(day).date()
                late = datetime(local.year, local.month, local.day, 23, self.rng.randrange(60),
                                tzinfo=zone)
                address = self.ip(plan.info.home)
                for i in range(self.rng.randint(3, 10)):
                    self.emit(plan, late + timedelta(minutes=2 * i), address)

    def run_batch(self, plan: _Plan) -> None:
        ips = list(plan.ips)
        for day in range(self.days):
            if self.rng.random() < 0.05:  # a redeploy lands on a new address in the same cloud
                ips = [self.ip(plan.info.home, plan.ips[0].rsplit(".", 2)[0])]
            for hour in range(24):
                start = self.day(day) + timedelta(hours=hour)
                n = max(0, round(plan.rate + self.rng.gauss(0, plan.rate * 0.08)))
                step = 3600 / max(n, 1)
                for i in range(n):
                    when = start + timedelta(seconds=step * i + self.rng.random() * step * 0.3)
                    self.emit(plan, when, ips[0])

    def run_ci(self, plan: _Plan) -> None:
        zone = ZoneInfo(plan.tz)
        for day in range(self.days):
            local = self.day(day).date()
            nightly = datetime(local.year, local.month, local.day, 3, 10, tzinfo=zone)
            bursts = [nightly]
            if local.weekday() < 5:
                bursts += [datetime(local.year, local.month, local.day, h, self.rng.randrange(60),
                                    tzinfo=zone)
                           for h in sorted(self.rng.sample(range(9, 19), self.rng.randint(1, 4)))]
            for start in bursts:
                ip = self.ip(plan.info.home, self.rng.choice(IP_BLOCKS[plan.info.home][:3]))
                n = max(5, round(plan.rate * self.rng.uniform(2, 4)))
                for i in range(n):
                    self.emit(plan, start + timedelta(seconds=i * self.rng.uniform(4, 12)), ip)

    def run_multi_office(self, plan: _Plan) -> None:
        for day in range(self.days):
            for country in plan.countries:
                self.office_day(plan, day, country, OFFICES[country], plan.rate,
                                self.office_ips(country), agent=self.rng.choice(_DEV_AGENTS))

    def run_traveller(self, plan: _Plan) -> None:
        """Home office, a trip on days 2-4 (learning) and again on days 20-23 to the same place."""
        away = plan.countries[1]
        trips = [range(2, 5), range(min(20, self.days - 4), min(24, self.days))]
        home_ip = self.ip(plan.info.home)  # a home broadband address
        for day in range(self.days):
            abroad = any(day in trip for trip in trips)
            country = away if abroad else plan.info.home
            if abroad:
                ips = [self.ip(away, self.rng.choice(IP_BLOCKS[away][:2]))]  # hotel wifi
            else:
                ips = [*plan.ips, home_ip]
            self.office_day(plan, day, country, OFFICES[country], plan.rate, ips)

    def run_group(self, plans: list[_Plan], nightly: bool) -> None:
        """Keys of one app or one eval harness: same address, template and minutes."""
        zone = ZoneInfo(plans[0].tz)
        for day in range(self.days):
            local = self.day(day).date()
            if nightly:
                start = datetime(local.year, local.month, local.day, 1, 0, tzinfo=zone)
                for plan in plans:
                    n = round(plan.rate * self.rng.uniform(0.9, 1.1))
                    for i in range(n):
                        when = start + timedelta(seconds=i * 20 + self.rng.random() * 5)
                        self.emit(plan, when, plan.ips[0])
            else:
                for plan in plans:
                    self.office_day(plan, day, plan.info.home, plan.tz, plan.rate, plan.ips)

    # attacks

    def plant(self, kind: str, keys: list[KeyInfo], start: datetime, end: datetime,
              description: str) -> None:
        alert_type, also = ATTACK_KINDS[kind]
        # Whole seconds that contain every event (exports keep milliseconds only).
        first = start.astimezone(UTC).replace(microsecond=0)
        last = end.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        self.planted.append(Planted(kind, alert_type, tuple(k.key_id for k in keys), first, last,
                                    also, description))

    def attack_day(self, length: int = 1) -> int:
        last = self.days - 1 - length
        return self.rng.randint(self.attack_from, max(self.attack_from, last))

    def burst(self, plan: _Plan, start: datetime, hours: float, rate: float, ips: list[str],
              **emit: Any) -> tuple[datetime, datetime]:
        times = self.times(start, hours, rate)
        for when in times:
            self.emit(plan, when, self.rng.choice(ips), **emit)
        return times[0], times[-1]

    def attack(self, kind: str, index: int) -> None:
        rng = self.rng
        day = self.attack_day(3)
        home = rng.choice(("US", "DE", "IN", "GB", "JP"))
        if kind in ("new-country", "impossible-travel"):
            victim = self.business(f"svc-{kind}-{index}", "team-apps", home, victim=True,
                                   template="chat", rate=rng.uniform(6, 12))
            land = rng.choice(ATTACKER_COUNTRIES)
            ips = [self.ip(land) for _ in range(2)]
            local = self.day(day).date()
            zone = ZoneInfo(OFFICES[home])
            if kind == "new-country":
                start = datetime(local.year, local.month, local.day, 20, 0, tzinfo=zone)
                first, last = self.burst(victim, start, 3, 12, ips, template="chat")
                text = f"{land}: ~36 requests over 3 h from a country the key never used"
            else:
                while self.day(day).weekday() >= 5:
                    day -= 1
                local = self.day(day).date()
                start = datetime(local.year, local.month, local.day, 10, 0, tzinfo=zone)
                first, last = self.burst(victim, start, 4, 6, ips, template="chat")
                text = f"{land} during {home} office hours, minutes apart from office use"
            self.plant(kind, [victim.info], first, last, text)
        elif kind == "plateau":
            victim = self.business(f"svc-plateau-{index}", "team-apps", home, victim=True,
                                   rate=rng.uniform(6, 14))
            vps = self.ip(home, IP_BLOCKS[home][0])
            rate = max(90.0, victim.rate * 8)
            zone = ZoneInfo(OFFICES[home])
            spans = []
            for night in range(3):
                local = self.day(day + night).date()
                start = datetime(local.year, local.month, local.day, 22, 0, tzinfo=zone)
                n = round(rate * 7)
                for i in range(n):
                    self.emit(victim, start + timedelta(seconds=i * 3600 / rate + rng.random()),
                              vps, prompt=_harvest, out_median=1500)
                spans.append((start, start + timedelta(hours=7)))
            self.plant(kind, [victim.info], spans[0][0], spans[-1][1],
                       f"3 nights, 22:00-05:00 local at a flat {rate:.0f} req/h from one VPS")
        elif kind == "rotation":
            size = rng.randint(4, 6)
            team = f"team-datasci-{index}"
            pool = [self.business(f"ds-notebook-{index}-{i}", team, home, victim=True,
                                  template="chat", rate=rng.uniform(2, 5)) for i in range(size)]
            vps = self.ip(home, IP_BLOCKS[home][0])
            local = self.day(day).date()
            start = datetime(local.year, local.month, local.day, 19, 0, tzinfo=ZoneInfo(OFFICES[home]))
            when, turn, per_minute = start, 0, 0.9
            end = start + timedelta(hours=20)
            while when < end:
                plan = pool[turn % size]
                block_end = when + timedelta(minutes=rng.randint(70, 110))
                while when < block_end:
                    self.emit(plan, when, vps, prompt=_harvest, out_median=1200)
                    when += timedelta(seconds=60 / per_minute * rng.uniform(0.8, 1.2))
                turn += 1
            self.plant(kind, [p.info for p in pool], start, when,
                       f"{size} keys of {team} used in turns of 70-110 min for 20 h, ~54 req/h each")
        elif kind in ("model-shift", "ratio-shift", "cot-extraction"):
            template = "classify" if kind == "model-shift" else rng.choice(("support", "rag", "sql"))
            victim = self.business(f"svc-{kind}-{index}", "team-apps", home, victim=True,
                                   template=template, rate=rng.uniform(10, 16))
            while self.day(day).weekday() >= 5:
                day -= 1
            local = self.day(day).date()
            start = datetime(local.year, local.month, local.day, 9, 0, tzinfo=ZoneInfo(OFFICES[home]))
            ips = victim.ips[:1] if kind != "model-shift" else [self.ip(home)]
            if kind == "model-shift":
                first, last = self.burst(victim, start, 18, max(8.0, victim.rate), ips,
                                         model="claude-opus-4-1", out_median=900,
                                         template="classify")
                text = "claude-haiku-4-5 classification key calls claude-opus-4-1, long outputs"
            elif kind == "ratio-shift":
                first, last = self.burst(victim, start, 9, max(10.0, victim.rate), ips,
                                         prompt=_essay, out_median=3800)
                text = "short prompts asking for ~3800-token outputs on the key's own model"
            else:
                first, last = self.burst(victim, start, 9, max(45.0, victim.rate * 3), ips,
                                         prompt=_cot, out_median=900)
                text = "templated chain-of-thought prompts, ~400 in one working day"
            self.plant(kind, [victim.info], first, last, text)
        elif kind in ("campaign-shared-ip", "campaign-distinct-ip"):
            size = rng.randint(5, 12)
            shared = kind == "campaign-shared-ip"
            homes = ["US"] * size if shared else [rng.choice(("US", "DE", "IN", "GB")) for _ in range(size)]
            members = [self.business(f"svc-{rng.choice(_WORDS)}-{index}-{i}", rng.choice(
                ("team-apps", "team-web", "team-search", "team-mobile")), homes[i], victim=True,
                rate=rng.uniform(4, 12)) for i in range(size)]
            attacker_ips = [self.ip("US", IP_BLOCKS["US"][5]) for _ in range(rng.randint(2, 3))]
            start = self.day(day) + timedelta(hours=rng.randint(0, 12))
            prompt = _campaign_a if shared else _campaign_b
            agent = _RARE_AGENT if shared else _AGENTS[0]
            own_ips = {m.info.key_id: self.ip(m.info.home) for m in members}
            tick, end = start, start + timedelta(hours=8)
            while tick < end:
                for member in members:
                    source = rng.choice(attacker_ips) if shared else own_ips[member.info.key_id]
                    for _ in range(rng.randint(1, 3)):
                        self.emit(member, tick + timedelta(seconds=rng.uniform(0, 25)), source,
                                  prompt=prompt, agent=agent, out_median=500)
                tick += timedelta(minutes=5)
            how = (f"{len(attacker_ips)} shared US addresses, agent {_RARE_AGENT}" if shared
                   else "one residential address per key, a common agent")
            self.plant(kind, [m.info for m in members], start, end,
                       f"{size} keys, one template, requests in the same 5-minute ticks; {how}")
        elif kind == "canary":
            info = self.key(f"deploy-legacy-{index}", "team-platform", "canary", "US", victim=True)
            plan = _Plan(info, "chat", _GPT_OLD, 0, "curl/8.5.0", [])
            land = rng.choice(ATTACKER_COUNTRIES)
            start = self.day(day) + timedelta(hours=rng.randint(0, 23), minutes=rng.randrange(60))
            first, last = self.burst(plan, start, 0.2, 30, [self.ip(land)], template="chat")
            self.plant(kind, [info], first, last, f"canary used from {land}")
            self.canary_keys.append(info)
        else:  # pragma: no cover - ATTACK_KINDS and this dispatch are kept in step
            raise ValueError(kind)

    def build(self) -> Corpus:
        rng, spec = self.rng, self.spec
        plans_normal: list[_Plan] = []
        # A fixed mix of profiles, cycled to reach ``normal_keys``: every profile appears
        # once in the first eight, then the two groups (8 keys) when there is room.
        cycle = ("business-hours", "batch", "ci", "multi-office", "traveller", "tutor", "launch",
                 "late-start", "business-hours", "business-hours", "batch", "ci",
                 "business-hours", "traveller", "business-hours")
        groups_added = False
        groups_at = min(8, spec.normal_keys - 8)
        n = 0
        while n < spec.normal_keys:
            profile = cycle[n % len(cycle)]
            if not groups_added and n == groups_at:
                self.groups()
                groups_added = True
                n += 8
                continue
            home = rng.choice(tuple(OFFICES))
            if profile in ("business-hours", "launch", "late-start", "tutor"):
                extra: dict[str, Any] = {}
                if profile == "launch":
                    extra["launch_day"] = self.attack_from - rng.randint(0, 4)
                if profile == "late-start":
                    extra["start_day"] = rng.randint(7, 11)
                plan = self.business(f"{rng.choice(_WORDS)}-{profile}-{n}", f"team-{home.lower()}",
                                     home, profile=profile,
                                     template="tutor" if profile == "tutor" else None, **extra)
            elif profile == "batch":
                info = self.key(f"batch-{rng.choice(_WORDS)}-{n}", "team-data", "batch", "US")
                plan = self.add(info, rng.choice(("receipt", "classify", "translate")),
                                rng.uniform(4, 14), "python-httpx/0.27.2",
                                [self.ip("US", rng.choice(IP_BLOCKS["US"][:3]))])
            elif profile == "ci":
                country = rng.choice(("US", "DE"))
                info = self.key(f"ci-{rng.choice(_WORDS)}-{n}", "team-platform", "ci", country)
                plan = self.add(info, "changelog", rng.uniform(8, 20), "python-httpx/0.27.2", [],
                                tz=OFFICES[country])
            elif profile == "multi-office":
                info = self.key(f"shared-assistant-{n}", "team-global", "multi-office", "US")
                plan = self.add(info, "chat", rng.uniform(3, 8), _DEV_AGENTS[0], [],
                                countries=("US", "DE", "IN"))
            else:  # traveller
                home = rng.choice(("DE", "GB", "FR", "US"))
                away = rng.choice([c for c in ("US", "JP", "SG", "GB", "BR") if c != home])
                info = self.key(f"dev-{rng.choice(_NAMES).lower()}-{n}", f"team-{home.lower()}",
                                "traveller", home)
                plan = self.add(info, "chat", rng.uniform(2, 6), rng.choice(_DEV_AGENTS),
                                self.office_ips(home), tz=OFFICES[home], countries=(home, away))
            plans_normal.append(plan)
            n += 1
        for kind in ATTACK_KINDS:
            if kind not in spec.kinds:
                continue
            for index in range(spec.attacks_per_type):
                self.attack(kind, index)
        for plan in self.plans:
            profile = plan.info.profile
            if plan.info.team in ("team-app-group", "team-eval"):
                continue
            if profile == "batch":
                self.run_batch(plan)
            elif profile == "ci":
                self.run_ci(plan)
            elif profile == "multi-office":
                self.run_multi_office(plan)
            elif profile == "traveller":
                self.run_traveller(plan)
            elif profile != "canary":
                self.run_business(plan)
        for team, nightly in (("team-app-group", False), ("team-eval", True)):
            members = [p for p in self.plans if p.info.team == team]
            if members:
                self.run_group(members, nightly)
        self.rows.sort(key=lambda r: (r["startTime"], r["request_id"]))
        keys = [p.info for p in self.plans] + self.canary_keys
        return Corpus(spec, keys, self.planted, tuple(k.key_id for k in self.canary_keys),
                      self.rows)

    def groups(self) -> None:
        """Three keys of one app (dev/staging/prod) and five keys of one eval harness."""
        vpc = [self.ip("US", IP_BLOCKS["US"][1])]
        for env in ("dev", "staging", "prod"):
            info = self.key(f"checkout-assistant-{env}", "team-app-group", "app-group", "US")
            self.add(info, "support", {"dev": 2.0, "staging": 3.0, "prod": 12.0}[env],
                     "OpenAI/Python 1.54.3", vpc, tz=OFFICES["US"])
        runner = [self.ip("US", IP_BLOCKS["US"][2])]
        for provider in ("sonnet", "haiku", "gpt4o", "mini", "opus"):
            info = self.key(f"eval-{provider}", "team-eval", "eval-group", "US")
            plan = self.add(info, "eval", 60.0, "python-httpx/0.27.2", runner, tz="UTC")
            plan.model = {"sonnet": _SONNET_OLD, "haiku": "claude-haiku-4-5", "gpt4o": _GPT_OLD,
                          "mini": "gpt-4o-mini", "opus": "claude-opus-4-1"}[provider]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generate(spec: CorpusSpec | None = None) -> Corpus:
    """The synthetic org for ``spec`` (defaults: 40 normal keys, 5 weeks, one attack per kind).

    Raises:
        ValueError: ``spec.kinds`` names an attack kind that does not exist.

    """
    spec = spec or CorpusSpec()
    unknown = sorted(set(spec.kinds) - set(ATTACK_KINDS))
    if unknown:
        raise ValueError(f"unknown attack kind(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(ATTACK_KINDS)}")
    return _Gen(spec).build()
