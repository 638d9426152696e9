"""Tests of the bundled knowledge file, ``knowledge/faq.yaml``.

The FAQ's keys (``keys.yaml``) and the held-out dev questions (``dev.yaml``) live in the shared
folder beside the repository. ``FAQBOT_DEV_SET`` names the dev set (CI sets it to
``../shared/eval/dev.yaml``; a relative path is taken from the repository root), and
``keys.yaml`` is looked for beside it. Without the variable, both are looked for in
``../shared/eval/``, and tests that need them are skipped when they are not there; with the
variable set, a missing file is a failure.
"""

from __future__ import annotations

import importlib.util
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
        if importlib.util.find_spec("bot.cli") is None:
            pytest.skip("bot.cli does not exist yet")
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


# The figures reported in docs/quality.md (round 16, with the lexical matcher and with the
# optional semantic model), as floors and ceilings: a change to the matcher, the model's use or
# the knowledge that loses any of them fails here. Rates are percentages; each part is checked
# on its own (part 1 tuned on, part 2 held out).
DEV_FLOORS = {
    "lexical": {
        (1, 120): {"in_scope_right": 95.2, "oos_not_answered": 100.0, "wrong": 0.8,
                   "cap_ticket": 100.0, "clarify_hit": 90.0},
        (121, 301): {"in_scope_right": 82.5, "oos_not_answered": 95.6, "wrong": 1.1,
                     "cap_ticket": 100.0, "clarify_hit": 90.0},
    },
    "semantic": {
        (1, 120): {"in_scope_right": 97.6, "oos_not_answered": 100.0, "wrong": 0.8,
                   "cap_ticket": 100.0, "clarify_hit": 90.0},
        (121, 301): {"in_scope_right": 92.9, "oos_not_answered": 95.6, "wrong": 1.1,
                     "cap_ticket": 100.0, "clarify_hit": 90.0},
    },
}


# The question sets written for this project by writers who saw neither the dev set nor the
# knowledge (docs/quality.md, rounds 5 to 15): tuned on, so guarded at their current figures.
# (written-e.yaml is held out: it is measured, never guarded or tuned on. written-h to -m
# were used only through their aggregate figures until round 20, which read their misses;
# written-n to -q are used only through their aggregate figures: nobody has read them.)
WRITTEN_FLOORS = {
    "lexical": {
        "written-a.yaml": {"in_scope_right": 93.1, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-b.yaml": {"in_scope_right": 83.7, "oos_not_answered": 98.4, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-c.yaml": {"in_scope_right": 79.3, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-d.yaml": {"in_scope_right": 87.0, "oos_not_answered": 96.9, "wrong": 1.3,
                           "cap_ticket": 95.0, "clarify_hit": 90.0},
        "written-f.yaml": {"in_scope_right": 93.0, "oos_not_answered": 97.2, "wrong": 1.3,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-g.yaml": {"in_scope_right": 90.9, "oos_not_answered": 96.9, "wrong": 2.1,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-h.yaml": {"in_scope_right": 86.2, "oos_not_answered": 96.6, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-i.yaml": {"in_scope_right": 83.7, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-j.yaml": {"in_scope_right": 88.3, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-k.yaml": {"in_scope_right": 80.6, "oos_not_answered": 98.4, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-l.yaml": {"in_scope_right": 89.0, "oos_not_answered": 98.4, "wrong": 1.3,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-m.yaml": {"in_scope_right": 74.8, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-n.yaml": {"in_scope_right": 84.5, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-o.yaml": {"in_scope_right": 93.5, "oos_not_answered": 93.8, "wrong": 1.7,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-p.yaml": {"in_scope_right": 86.3, "oos_not_answered": 92.4, "wrong": 3.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-q.yaml": {"in_scope_right": 91.5, "oos_not_answered": 98.4, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
    },
    "semantic": {
        "written-a.yaml": {"in_scope_right": 96.2, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-b.yaml": {"in_scope_right": 90.6, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-c.yaml": {"in_scope_right": 85.3, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-d.yaml": {"in_scope_right": 90.3, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-f.yaml": {"in_scope_right": 96.5, "oos_not_answered": 98.1, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-g.yaml": {"in_scope_right": 94.8, "oos_not_answered": 96.9, "wrong": 1.3,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-h.yaml": {"in_scope_right": 90.0, "oos_not_answered": 98.3, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-i.yaml": {"in_scope_right": 88.1, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-j.yaml": {"in_scope_right": 95.4, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-k.yaml": {"in_scope_right": 87.0, "oos_not_answered": 100.0, "wrong": 0.0,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-l.yaml": {"in_scope_right": 91.6, "oos_not_answered": 100.0, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-m.yaml": {"in_scope_right": 87.0, "oos_not_answered": 96.9, "wrong": 1.3,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-n.yaml": {"in_scope_right": 90.3, "oos_not_answered": 100.0, "wrong": 0.5,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-o.yaml": {"in_scope_right": 96.1, "oos_not_answered": 96.9, "wrong": 0.9,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-p.yaml": {"in_scope_right": 90.2, "oos_not_answered": 95.4, "wrong": 1.7,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
        "written-q.yaml": {"in_scope_right": 93.5, "oos_not_answered": 96.9, "wrong": 1.3,
                           "cap_ticket": 100.0, "clarify_hit": 90.0},
    },
}
MATCHERS = ("lexical", "semantic")
TUNED_WRITTEN = tuple(f"written-{s}.yaml" for s in "abcdfg")


@pytest.fixture(scope="module")
def semantic_kb(kb: KnowledgeBase) -> KnowledgeBase:
    """The bundled knowledge with the optional semantic model (installed by scripts/_venv.sh)."""
    from bot.semantic import attach, encoder_for

    encoder = encoder_for("auto")
    if encoder is None:
        pytest.fail("the semantic model is not installed (scripts/_venv.sh installs it)")
    return attach(kb, encoder)


def _matcher_kb(request: pytest.FixtureRequest, matcher: str) -> KnowledgeBase:
    return request.getfixturevalue("kb" if matcher == "lexical" else "semantic_kb")


def _worse(figures: dict, floors: dict[str, float]) -> dict[str, tuple[float, float]]:
    """The figures below their floor (``wrong``: above its ceiling), with the limit."""
    worse = {}
    for name, limit in floors.items():
        value = figures[name]
        if value is None:
            continue  # e.g. no clarification asked on this part
        ok = value <= limit + 0.05 if name == "wrong" else value >= limit - 0.05
        if not ok:
            worse[name] = (round(value, 4), limit)
    return worse


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize("name", sorted(WRITTEN_FLOORS["lexical"]))
def test_written_sets_do_not_regress(
    request: pytest.FixtureRequest, matcher: str, name: str
) -> None:
    """Each written set keeps the figures docs/quality.md reports, with and without the model."""
    from bot.evaluation import evaluate

    path = REPO / "tests" / "data" / name
    kb = _matcher_kb(request, matcher)
    figures = evaluate(parse_cases(path.read_text(encoding="utf-8"), str(path)), kb).figures()
    worse = _worse(figures, WRITTEN_FLOORS[matcher][name])
    assert not worse, f"{name} ({matcher}): {worse}"


# The tuned written sets (a-d, f, g) asked once more with one typo per question
# (evaluation.misspell, seed 0; `faqbot kb eval --typos 1`), docs/quality.md round 16. Before
# typos were read against the knowledge's words as written: 77.5 / 83.0 right.
TYPO_FLOORS = {
    "lexical": {"in_scope_right": 84.2, "oos_not_answered": 97.9, "wrong": 1.0,
                "cap_ticket": 99.0},  # one misspelt cap request of 110 asked back
    "semantic": {"in_scope_right": 90.3, "oos_not_answered": 97.9, "wrong": 0.9,
                 "cap_ticket": 100.0},  # the model reads the corrected words (round 19)
}


@pytest.mark.parametrize("matcher", MATCHERS)
def test_misspelt_questions_do_not_regress(request: pytest.FixtureRequest, matcher: str) -> None:
    """One typo per question costs a few points, not a third of the answers."""
    from bot.evaluation import Case, evaluate, misspell

    cases = []
    for n, name in enumerate(TUNED_WRITTEN):
        path = REPO / "tests" / "data" / name
        cases += [Case(c.question, c.expect, c.number + 1000 * n)
                  for c in parse_cases(path.read_text(encoding="utf-8"), str(path))]
    figures = evaluate(misspell(cases, 1), _matcher_kb(request, matcher)).figures()
    worse = _worse(figures, TYPO_FLOORS[matcher])
    assert not worse, f"misspelt written sets ({matcher}): {worse}"


class TestDevAccuracy:
    @pytest.mark.parametrize("matcher", MATCHERS)
    @pytest.mark.parametrize("part", sorted(DEV_FLOORS["lexical"]), ids=lambda p: f"{p[0]}-{p[1]}")
    def test_dev_figures_do_not_regress(
        self, request: pytest.FixtureRequest, matcher: str, part: tuple[int, int]
    ) -> None:
        """Each part of the dev set keeps the figures docs/quality.md reports."""
        from bot.evaluation import evaluate, parse_cases

        path = _eval_file("dev.yaml")
        cases = parse_cases(path.read_text(encoding="utf-8"), str(path))
        kb = _matcher_kb(request, matcher)
        figures = evaluate(cases[part[0] - 1 : part[1]], kb).figures()
        worse = _worse(figures, DEV_FLOORS[matcher][part])
        assert not worse, f"dev questions {part[0]}-{part[1]} ({matcher}): {worse}"


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
        assert "google play" in d.explain["not_covered"]["question"].lower()
