"""Prompt phrasing markers, computed once at import while the prompt text is at hand.

Why at import: the store keeps no prompt text (only a SimHash and a length), so anything a
detector needs to know about *what the prompt says* must be decided here and stored as a
short marker list (``prompt_markers``: comma-separated, sorted marker names, or None).

Markers are class names, never quotes of the text. The prompt-mix detector reads them:

* ``reasoning``: chain-of-thought / reasoning elicitation ("think step by step", "show
  your reasoning", "explain your chain of thought", "reason through each step before
  answering"). Distillers ask for it at scale; a tutoring bot asks for it always, which is
  why the detector compares a key's share with its own baseline, not with zero.
* ``extraction``: system-prompt extraction ("ignore previous instructions", "repeat the
  text above", "print your system prompt", "what were your initial instructions"). A
  match preceded by a negation ("never reveal your system prompt", common in system
  prompts themselves) does not count.
* ``trap``: one of the configured trap strings occurs (case-insensitive); trap strings
  are planted where only a thief would read them, so a hit is proof.
* ``topic:<name>``: a coarse subject from a small keyword taxonomy (math, code, law,
  medicine, ...), the one with the most distinct keywords in the text, for topic-sweep
  detection. At most one topic per prompt.

Cost: one lower-casing, one word tokenisation with dictionary look-ups and two
precompiled phrase regexes over at most ``HEAD_CHARS + TAIL_CHARS`` characters (the
head carries templates and questions, the tail the "think step by step" suffixes), so
the cost per request is bounded whatever the prompt length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from keyguard.config import UsageConfig

HEAD_CHARS = 4_096
TAIL_CHARS = 2_048

#: The marker names; they are stored and read back, so treat them as API (never rename).
REASONING = "reasoning"
EXTRACTION = "extraction"
TRAP = "trap"
TOPIC_PREFIX = "topic:"

_REASONING = re.compile(
    r"step[- ]by[- ]step"
    r"|chain[- ]of[- ]thoughts?"
    r"|let'?s think"
    r"|think (?:carefully|hard|deeply|aloud|out loud|it through|this through)"
    r"|(?:show|explain|include|give|write out|walk me through|describe|detail|share)"
    r" (?:me |us )?(?:all |each of |every step of )?(?:your|the) (?:full |complete |detailed |entire |step-by-step |internal |whole )?"
    r"(?:reasoning|thought process|thinking|chain of thought|work(?:ing)?|rationale|derivation)"
    r"|reason (?:through|about|carefully|step) "
    r"|(?:before|prior to) (?:answering|you answer|giving (?:your|the|a) (?:final )?answer)"
    r"|(?:reasoning|thinking) (?:trace|steps|process) (?:before|then|and then)"
    r"|internal monologue|scratch ?pad",
)
_EXTRACTION = re.compile(
    r"(?:ignore|disregard|forget|override|bypass) (?:all |any |every )?(?:of )?(?:the |your |my )?"
    r"(?:previous|prior|above|earlier|preceding|original|initial|system|existing) "
    r"(?:instructions|prompts?|messages?|directions|rules|guidelines|context)"
    r"|repeat (?:back )?(?:all |everything |verbatim )?(?:of )?(?:the )?(?:text|words|content|"
    r"instructions|messages?|prompt|lines)? ?(?:above|before this|preceding|verbatim)"
    r"|(?:print|show|reveal|output|display|tell me|give me|write out|dump|leak|repeat|"
    r"recite|share|return|echo|spell out) (?:me |us )?(?:your|the|its) (?:full |entire |exact |"
    r"original |hidden |initial |complete |verbatim |first )*(?:system prompt|system message|"
    r"initial instructions|original instructions|hidden instructions|developer message|"
    r"pre-?prompt|instructions you were given)"
    r"|what (?:were|are|was|is) your (?:initial |original |first |hidden |exact |full )*"
    r"(?:system prompt|system message|instructions|prompt)"
    r"|what (?:were|are|was|is) the (?:initial |original |first |hidden |exact |full )*"
    r"(?:system prompt|system message|initial instructions|original instructions)"
    r"|(?:everything|all the text|the text) (?:above|before) (?:this|the first) (?:line|message)"
    r"|system prompt (?:verbatim|word for word)",
)
_NEGATION = re.compile(r"\b(?:never|not|don'?t|cannot|can'?t|won'?t|refuse to|must not)\b[^.!?\n]*$")
#: Words every phrase of a marker contains at least one of: the phrase regexes (slow
#: alternations) run only in a small span around such a word, never over the whole text.
_REASONING_ANCHORS = frozenset({
    "step", "chain", "think", "thinking", "thought", "thoughts", "reason", "reasoning",
    "scratchpad", "scratch", "monologue", "rationale", "derivation", "answering", "answer",
    "work", "working"})
_EXTRACTION_ANCHORS = frozenset({
    "ignore", "disregard", "forget", "override", "bypass", "repeat", "prompt", "instructions",
    "message", "preprompt", "above"})
_SPAN = 120  # characters searched on each side of an anchor (longer than any phrase)
_MAX_ANCHOR_HITS = 4  # occurrences of one anchor word examined (bounds the cost)
_SEPARATORS = str.maketrans(dict.fromkeys("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~0123456789\n\t\r", " "))

#: Keyword taxonomy: a few dozen unambiguous words per subject (ambiguous ones left out).
TOPICS: Mapping[str, tuple[str, ...]] = {
    "math": ("algebra", "calculus", "equation", "equations", "integral", "derivative",
             "theorem", "polynomial", "matrix", "matrices", "geometry", "trigonometry",
             "probability", "arithmetic", "fraction", "fractions", "logarithm", "quadratic",
             "prime", "primes", "vector", "vectors", "eigenvalue", "mathematics", "math"),
    "code": ("python", "javascript", "typescript", "compile", "compiler",
             "debug", "bug", "algorithm", "recursion", "sql", "java", "rust", "golang",
             "regex", "programming", "code", "refactor", "stacktrace",
             "exception", "kubernetes", "docker"),
    "law": ("legal", "lawsuit", "contract", "contracts", "statute", "court", "plaintiff",
            "defendant", "attorney", "lawyer", "liability", "jurisdiction", "tort",
            "copyright", "trademark", "litigation", "law", "constitutional", "regulation"),
    "medicine": ("patient", "patients", "diagnosis", "symptom", "symptoms", "disease",
                 "treatment", "dosage", "medication", "clinical", "surgery", "therapy",
                 "medical", "medicine", "doctor", "vaccine", "infection", "cardiology"),
    "finance": ("stock", "stocks", "bond", "bonds", "portfolio", "investment", "investing",
                "dividend", "inflation", "mortgage", "loan", "accounting",
                "revenue", "valuation", "finance", "financial", "tax", "taxes", "equity"),
    "history": ("history", "historical", "century", "empire", "war", "revolution",
                "dynasty", "medieval", "ancient", "civilization", "colonial", "treaty",
                "monarchy", "renaissance"),
    "physics": ("physics", "quantum", "relativity", "momentum", "velocity", "gravity",
                "electron", "photon", "thermodynamics", "entropy", "newton", "particle",
                "magnetic", "electromagnetic", "acceleration", "friction", "optics"),
    "chemistry": ("chemistry", "chemical", "molecule", "molecules", "reaction", "reactions",
                  "compound", "atom", "atoms", "acid", "acids", "oxidation", "catalyst",
                  "molar", "organic", "periodic", "covalent", "ionic", "stoichiometry"),
    "biology": ("biology", "cell", "cells", "dna", "rna", "gene", "genes", "genetics",
                "protein", "proteins", "evolution", "photosynthesis", "enzyme", "enzymes",
                "organism", "species", "ecosystem", "mitosis", "bacteria"),
    "geography": ("geography", "continent", "climate", "river", "rivers",
                  "mountain", "mountains", "ocean", "oceans", "continents"),
    "literature": ("novel", "poem", "poetry", "author", "literature", "shakespeare",
                   "narrative", "metaphor", "fiction", "essay"),
    "security": ("malware", "exploit", "vulnerability", "phishing", "ransomware",
                 "encryption", "password", "passwords", "firewall", "cybersecurity",
                 "payload", "backdoor"),
}
_TOPIC_OF: dict[str, str] = {word: name for name, words in TOPICS.items() for word in words}
_INTERESTING = frozenset(_TOPIC_OF) | _REASONING_ANCHORS | _EXTRACTION_ANCHORS


def _window(text: str) -> str:
    """The part of a prompt that is classified: its head and tail, lower-cased."""
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]
    return text.lower()


def _near(text: str, anchors: Iterable[str], phrases: re.Pattern[str], *,
          negatable: bool = False) -> bool:
    """True when ``phrases`` matches within ``_SPAN`` characters of one of the anchor words.

    With ``negatable``, a match preceded in its sentence by a negation does not count
    ("never reveal your system prompt" is what system prompts themselves say).
    """
    for word in anchors:
        start = 0
        for _ in range(_MAX_ANCHOR_HITS):
            at = text.find(word, start)
            if at < 0:
                break
            for match in phrases.finditer(text, max(0, at - _SPAN), at + len(word) + _SPAN):
                if not negatable or not _NEGATION.search(text, max(0, match.start() - 40),
                                                         match.start()):
                    return True
            start = at + len(word)
    return False


def _topic(words: Iterable[str]) -> str | None:
    """The subject with the most distinct keywords among ``words``; ties broken by name."""
    hits: dict[str, int] = {}
    for word in words:
        name = _TOPIC_OF.get(word)
        if name is not None:
            hits[name] = hits.get(name, 0) + 1
    if not hits:
        return None
    return min(hits, key=lambda name: (-hits[name], name))


def topic(text: str) -> str | None:
    """The coarse subject of ``text`` (``math``, ``code``, ...), or None: see ``TOPICS``."""
    return _topic(_INTERESTING.intersection(text.lower().translate(_SEPARATORS).split()))


class PromptClassifier:
    """Finds phrasing markers in one prompt text; built once per importer."""

    def __init__(self, traps: Sequence[str] = ()) -> None:
        self.traps = tuple(dict.fromkeys(t.lower() for t in traps if t.strip()))

    def markers(self, text: str, *, screened: bool = False) -> str | None:
        """Comma-separated sorted marker names found in ``text``, or None when there are none.

        ``screened``: the caller already knows the text holds no extraction phrase and no
        trap string (the bulk import's SQL pre-filter, ``keyguard.usage.bulk``), so those
        checks are skipped.
        """
        window = _window(text)
        # One tokenisation (C-level translate/split/intersection) finds every word that
        # matters; the phrase regexes then run only near the anchors that occur.
        words = _INTERESTING.intersection(window.translate(_SEPARATORS).split())
        found: list[str] = []
        anchors = words & _EXTRACTION_ANCHORS
        if not screened and anchors and _near(window, sorted(anchors), _EXTRACTION,
                                              negatable=True):
            found.append(EXTRACTION)
        anchors = words & _REASONING_ANCHORS
        if anchors and _near(window, sorted(anchors), _REASONING):
            found.append(REASONING)
        if self.traps and not screened:
            # Traps are matched on the whole text: a thief may paste one anywhere.
            whole = window if len(text) <= HEAD_CHARS + TAIL_CHARS else text.lower()
            if any(t in whole for t in self.traps):
                found.append(TRAP)
        subject = _topic(words)
        if subject is not None:
            found.append(TOPIC_PREFIX + subject)
        return ",".join(sorted(found)) or None


def from_config(config: UsageConfig) -> PromptClassifier:
    """The classifier for ``config``: trap strings from the prompt-mix detector's table.

    The table is validated later by ``usage.settings`` (``trap-strings`` is a ``Params``
    field of the prompt-mix detector); here anything that is not a list of strings is
    ignored, so importing never fails on a config the settings loader will reject anyway.
    """
    table = config.detectors.get("prompt-mix", {})
    traps = table.get("trap-strings", ()) if isinstance(table, dict) else ()
    return PromptClassifier([t for t in traps if isinstance(t, str)] if isinstance(traps, list) else ())
