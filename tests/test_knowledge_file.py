"""Tests of the bundled knowledge file, ``knowledge/faq.yaml``.

The FAQ's keys (``keys.yaml``) and the held-out dev questions (``dev.yaml``) live in the shared
folder beside the repository. ``FAQBOT_DEV_SET`` names the dev set (CI sets it to
``../shared/eval/dev.yaml``; a relative path is taken from the repository root), and
``keys.yaml`` is looked for beside it. Without the variable, both are looked for in
``../shared/eval/``, and tests that need them are skipped when they are not there; with the
variable set, a missing file is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rapidfuzz import fuzz, process

from bot.evaluation import parse_cases
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.normalize import normalize

REPO = Path(__file__).resolve().parents[1]
KNOWLEDGE = REPO / "knowledge" / "faq.yaml"
DEFAULT_EVAL_DIR = REPO.parent / "shared" / "eval"
DEV_SET_ENV = "FAQBOT_DEV_SET"

MIN_PHRASINGS = 10
TOO_CLOSE = 90  # fuzz.ratio over normalised texts at or above which a phrasing copies a question
URL_RE = re.compile(r"https?://[^\s|>]+")
DOCS_PREFIX = "https://developers.tiktok.com/"


def _eval_file(name: str) -> Path:
    """The shared eval file ``name`` (see the module docstring for where it is looked for)."""
    configured = os.environ.get(DEV_SET_ENV)
    if configured:
        dev = Path(configured)
        if not dev.is_absolute():
            dev = REPO / dev
        path = dev if name == "dev.yaml" else dev.parent / name
        if not path.is_file():
            pytest.fail(f"{DEV_SET_ENV}={configured} is set but {path} does not exist")
        return path
    path = DEFAULT_EVAL_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set {DEV_SET_ENV} to the shared dev set)")
    return path


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="module")
def keys() -> dict[str, dict]:
    return yaml.safe_load(_eval_file("keys.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_questions() -> list[str]:
    from bot.evaluation import parse_cases

    path = _eval_file("dev.yaml")
    return [case.question for case in parse_cases(path.read_text(encoding="utf-8"), str(path))]


class TestLoading:
    def test_loads(self, kb: KnowledgeBase) -> None:
        """The bundled file loads and validates with the knowledge loader."""
        assert len(kb) > 0
        assert kb.support and kb.handoff and kb.synonyms

    def test_kb_check_exits_zero(self) -> None:
        """`faqbot kb check knowledge/faq.yaml` accepts the bundled file."""
        result = subprocess.run(
            [sys.executable, "-m", "bot", "kb", "check", "knowledge/faq.yaml"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r": ok \(15 entries, \d+ phrasings, \d+ not_covered\)", result.stdout)


class TestEntries:
    def test_every_key_is_an_entry(self, kb: KnowledgeBase, keys: dict[str, dict]) -> None:
        """The entries are exactly the FAQ keys, one entry per key."""
        assert sorted(e.id for e in kb) == sorted(keys)

    def test_questions_are_verbatim(self, kb: KnowledgeBase, keys: dict[str, dict]) -> None:
        """Each entry's question is the FAQ's question, word for word."""
        for entry in kb:
            assert entry.question == keys[entry.id]["question"], entry.id

    def test_answers_contain_all_anchors(self, kb: KnowledgeBase, keys: dict[str, dict]) -> None:
        """Each answer contains every anchor phrase of its key verbatim."""
        for entry in kb:
            missing = [a for a in keys[entry.id]["anchors"] if a not in entry.answer]
            assert not missing, f"{entry.id}: answer lacks {missing}"

    def test_only_cap_opens_a_ticket(self, kb: KnowledgeBase) -> None:
        """The cap entry answers and opens a cap_increase ticket; no other entry opens one."""
        assert kb.entry("cap").ticket == "cap_increase"
        assert [e.id for e in kb if e.ticket] == ["cap"]

    def test_enough_phrasings(self, kb: KnowledgeBase) -> None:
        """Every entry has at least MIN_PHRASINGS alternate phrasings."""
        short = {e.id: len(e.phrasings) for e in kb if len(e.phrasings) < MIN_PHRASINGS}
        assert not short

    def test_phrasings_distinct_after_normalising(self, kb: KnowledgeBase) -> None:
        """No two phrasings (questions included) read the same once normalised."""
        owner: dict[str, str] = {}
        clashes = []
        for entry in kb:
            for phrasing in entry.all_phrasings:
                text = normalize(phrasing)
                if text in owner:
                    clashes.append((phrasing, owner[text], entry.id))
                owner.setdefault(text, entry.id)
        assert not clashes

    def test_links_point_at_tiktok_docs(self, kb: KnowledgeBase) -> None:
        """Every URL in answers and links is an https page on developers.tiktok.com."""
        for entry in kb:
            urls = URL_RE.findall(entry.answer) + [link.url for link in entry.links]
            bad = [u for u in urls if not u.startswith(DOCS_PREFIX)]
            assert not bad, f"{entry.id}: {bad}"


class TestLeakGuard:
    def test_no_phrasing_copies_a_dev_question(
        self, kb: KnowledgeBase, dev_questions: list[str]
    ) -> None:
        """No phrasing is within a small edit distance of a held-out dev question."""
        dev = [normalize(q) for q in dev_questions]
        assert dev, "the dev set has no questions"
        too_close = []
        for entry in kb:
            for phrasing in entry.phrasings:
                hit = process.extractOne(
                    normalize(phrasing), dev, scorer=fuzz.ratio, processor=None,
                    score_cutoff=TOO_CLOSE,
                )
                if hit is not None:
                    # name only our phrasing: the dev questions stay unseen by whoever reads this
                    too_close.append(f"{entry.id}: {phrasing!r}")
        assert not too_close, "phrasings too close to dev questions: " + "; ".join(too_close)

    def test_no_not_covered_question_copies_a_dev_question(
        self, kb: KnowledgeBase, dev_questions: list[str]
    ) -> None:
        """The `not_covered` questions are written from the FAQ's meaning too: none is within a
        small edit distance of a dev question (or of a question of the held-out written set)."""
        held_out = parse_cases((REPO / "tests" / "data" / "written-e.yaml").read_text("utf-8"))
        others = [normalize(q) for q in [*dev_questions, *(c.question for c in held_out)]]
        assert kb.not_covered and others
        too_close = [
            q for q in kb.not_covered
            if process.extractOne(normalize(q), others, scorer=fuzz.ratio, processor=None,
                                  score_cutoff=TOO_CLOSE) is not None
        ]
        assert not too_close, "not_covered questions too close to dev questions: " + "; ".join(
            repr(q) for q in too_close)


# Accuracy gates on the bundled knowledge, with and without the optional semantic model: each
# a little under today's figure, so a change that loses ground fails here while noise of a
# question or two does not. Rates are percentages (`wrong`: a ceiling, of all questions).
# Groups: the dev set's two parts (1-120 tuned on, 121-301 held out); the written sets tuned
# on (a-d, f, g), also asked with one typo per question (`kb eval --typos 1`); the blind sets
# h-q, pooled. written-e.yaml is held out: measured, never guarded or tuned on.
GATES = {
    "lexical": {
        "dev 1-120": {"in_scope_right": 93.0, "oos_not_answered": 96.0, "wrong": 1.7},
        "dev 121-301": {"in_scope_right": 80.0, "oos_not_answered": 93.0, "wrong": 1.7},
        "tuned": {"in_scope_right": 86.0, "oos_not_answered": 97.0, "wrong": 1.5,
                  "cap_ticket": 97.0},
        "tuned, one typo each": {"in_scope_right": 83.5, "oos_not_answered": 96.5, "wrong": 1.5,
                                 "cap_ticket": 97.0},
        "blind": {"in_scope_right": 84.0, "oos_not_answered": 96.5, "wrong": 1.5,
                  "cap_ticket": 98.0},
    },
    "semantic": {
        "dev 1-120": {"in_scope_right": 95.0, "oos_not_answered": 96.0, "wrong": 1.7},
        "dev 121-301": {"in_scope_right": 90.0, "oos_not_answered": 93.0, "wrong": 1.7},
        "tuned": {"in_scope_right": 90.5, "oos_not_answered": 98.0, "wrong": 1.2,
                  "cap_ticket": 98.0},
        "tuned, one typo each": {"in_scope_right": 89.0, "oos_not_answered": 97.0, "wrong": 1.3,
                                 "cap_ticket": 98.0},
        "blind": {"in_scope_right": 89.5, "oos_not_answered": 97.0, "wrong": 1.3,
                  "cap_ticket": 98.0},
    },
}
MATCHERS = ("lexical", "semantic")
TUNED_WRITTEN = tuple(f"written-{s}.yaml" for s in "abcdfg")
BLIND_WRITTEN = tuple(f"written-{s}.yaml" for s in "hijklmnopq")


@pytest.fixture(scope="module")
def semantic_kb(kb: KnowledgeBase) -> KnowledgeBase:
    """The bundled knowledge with the optional semantic model (installed by scripts/_venv.sh)."""
    from bot.semantic import attach, encoder_for

    encoder = encoder_for("auto")
    if encoder is None:
        pytest.fail("the semantic model is not installed (scripts/_venv.sh installs it)")
    return attach(kb, encoder)


def _written(names: tuple[str, ...]) -> list:
    """The cases of the written sets ``names``, numbered apart."""
    from bot.evaluation import Case

    cases = []
    for n, name in enumerate(names):
        path = REPO / "tests" / "data" / name
        cases += [Case(c.question, c.expect, c.number + 1000 * n)
                  for c in parse_cases(path.read_text(encoding="utf-8"), str(path))]
    return cases


def _group(name: str) -> list:
    from bot.evaluation import misspell

    if name.startswith("dev "):
        first, last = (int(n) for n in name.split()[1].split("-"))
        path = _eval_file("dev.yaml")
        return parse_cases(path.read_text(encoding="utf-8"), str(path))[first - 1 : last]
    if name == "tuned":
        return _written(TUNED_WRITTEN)
    if name == "tuned, one typo each":
        return misspell(_written(TUNED_WRITTEN), 1)
    return _written(BLIND_WRITTEN)


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize("group", sorted(GATES["lexical"]))
def test_accuracy_gate(request: pytest.FixtureRequest, matcher: str, group: str) -> None:
    """The bundled knowledge answers each group of labelled questions at least this well."""
    from bot.evaluation import evaluate

    kb = request.getfixturevalue("kb" if matcher == "lexical" else "semantic_kb")
    figures = evaluate(_group(group), kb).figures()
    worse = {name: (round(figures[name], 2), limit) for name, limit in GATES[matcher][group].items()
             if figures[name] is not None
             and (figures[name] > limit if name == "wrong" else figures[name] < limit)}
    assert not worse, f"{group} ({matcher}): {worse}"


class TestNotCoveredLexical:
    """The bundled `not_covered` list, for the lexical matcher alone (scored as one more,
    hidden entry)."""

    def test_a_number_in_a_question_is_no_sign_of_what_the_faq_leaves_out(
        self, kb: KnowledgeBase
    ) -> None:
        """The list mentions 'HTTP 429' and 'error code 10002'; questions that carry such a
        number about something the FAQ answers are still answered."""
        from bot.matching import decide

        assert any(ch.isdigit() for q in kb.not_covered for ch in q)
        hidden = kb.beyond.entries[-1]
        assert not any(ch.isdigit() for p in hidden.all_phrasings for ch in p)
        for question in ("how long is the review 7-429", "how long is the review for app 429"):
            d = decide(question, kb)
            assert (d.action, d.entry.id) == ("answer", "review-time"), question

    def test_another_stores_review_is_a_ticket(self, kb: KnowledgeBase) -> None:
        from bot.matching import decide

        d = decide("how long does the google play review take", kb, explain=True)
        assert (d.action, d.reason) == ("ticket", "no_match")
        assert "google play" in d.explain.not_covered.question.lower()
