"""What the FAQ does not answer yet (bot.gaps), weekly figures (bot.stats), and ``faqbot kb gaps|stats``."""

from __future__ import annotations

import gc
import json
import random
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from bot.cli import main
from bot.gaps import cluster_questions, find_gaps, is_gap
from bot.knowledge import parse_knowledge
from bot.stats import stats_html, weekly_stats
from bot.tickets import open_store

KB = """\
version: 1
title: Test FAQ
thresholds: {answer: 60, clarify: 40, margin: 6}
entries:
  - id: review-time
    question: How long does the app review process take?
    phrasings: [review eta, how long is the review, when will approval come,
                how many days does review take, app review duration]
    answer: App review may take several days to two weeks. <https://x.example/review|Review>
  - id: not-approved
    question: Why was my app not approved?
    phrasings: [app rejected, why was my app declined, reasons for rejection,
                my app got rejected what now, what does not approved mean]
    answer: Apps are not approved for various reasons. <https://x.example/review|Review>
  - id: cap
    question: Can I increase my active user cap?
    phrasings: [raise the user limit, need more users allowed, increase user cap,
                more active users, lift the user cap]
    answer: Please contact us via our Support form to request an increase in your user cap.
    ticket: cap_increase
"""

# Planted paraphrases: a topic the FAQ lacks, and an entry's topic in words it lacks.
DELETE_ACCOUNT = [
    "how do I delete my developer account?",
    "how can I delete my dev account",
    "delete developer account please",
    "need to delete our developer account asap",
    "How do I delete my developer account?",
]
PENDING_REVIEW = [
    "review has been stuck in the queue for ages",
    "our review is stuck in the queue",
    "the review queue is stuck",
    "review queue stuck for ages",
]
# asked back about in the question log, and review-time picked from "Did you mean…"
PICKED_REVIEW = ["is review slow at the moment", "review speed these days?"]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SYNONYMS_KB = """\
version: 1
synonyms:
  - [app store, play store, appstore]
  - [rejected, denied, refused]
entries:
  - id: x
    question: What is x?
    answer: X.
"""


@pytest.fixture
def kb():
    return parse_knowledge(KB, "test.yaml")


def row(question, *, action="ticket", reason="no_match", entry=None, feedback=None, days=1,
        n=0, picked=None):
    return {
        "id": n, "at": NOW - timedelta(days=days), "requester": "U1", "channel": "C1",
        "question": question, "action": action, "entry": entry, "score": 20.0,
        "reason": reason if action == "ticket" else None, "feedback": feedback,
        "picked": picked,
    }


def picks(*pairs, **fields):
    """Clarified questions, each with the entry its asker picked from "Did you mean…"."""
    return [row(q, action="clarify", picked=e, **fields) for q, e in pairs]


def planted_log():
    rows = [row(q, days=i) for i, q in enumerate(DELETE_ACCOUNT)]
    rows += [row(q, days=2) for q in PENDING_REVIEW]
    rows += [row("why was my app declined", action="answer", entry="not-approved",
                 feedback="not_helpful", days=3)] * 3
    rows += [row("the review is taking forever", days=20)] * 3  # answered by today's knowledge
    rows += [row("raise the user limit please", reason="cap_increase", entry="cap")] * 3
    rows += [row("can I talk to a human", reason="requested")] * 3
    rows += [row("how long does review take", action="answer", entry="review-time")] * 5
    rows += [row("what's the weather like in Lisbon")]
    return [dict(r, id=i + 1) for i, r in enumerate(rows)]


class TestIsGap:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"action": "ticket", "reason": "no_match"}, True),
            ({"action": "ticket", "reason": "not_helpful"}, True),
            ({"action": "answer", "feedback": "not_helpful"}, True),
            ({"action": "clarify", "feedback": None}, False),
            ({"action": "answer", "feedback": "helpful"}, False),
            ({"action": "ticket", "reason": "cap_increase"}, False),
            ({"action": "ticket", "reason": "requested"}, False),
        ],
    )
    def test_which_questions_are_gaps(self, fields, expected):
        """Tickets (but cap and human requests) and 'not helpful' answers are gaps."""
        assert is_gap(fields) is expected


class TestClusterQuestions:
    def test_planted_paraphrases_form_one_group(self, kb):
        """Paraphrases of one question land in one group, apart from unrelated questions."""
        texts = ["what's the weather", *DELETE_ACCOUNT, "coin refund please", "refund my coins"]
        groups = cluster_questions(texts, vocabulary=kb.index.vocabulary)
        assert groups[0] == [1, 2, 3, 4, 5]
        assert sorted(map(sorted, groups[1:])) == [[0], [6, 7]]

    def test_questions_without_words_are_in_no_group(self):
        """Greetings and emoji have no words to group by."""
        assert cluster_questions(["hi!", ":wave:", "thanks", "delete account", "delete account"]
                                 ) == [[3, 4]]

    def test_one_shared_word_is_not_enough(self, kb):
        """Short questions are not swallowed by a group sharing one of their words."""
        texts = ["api", "api", "api rate limit research quota", "display api python sdk"]
        groups = cluster_questions(texts, vocabulary=kb.index.vocabulary)
        assert [0, 1] in groups and len(groups) == 3

    def test_knowledge_synonyms_count_as_the_same_word(self, small_kb):
        """With the knowledge's vocabulary, words of one synonym group group together."""
        texts = ["refund denied again", "refund declined again", "refund rejected again"]
        assert cluster_questions(texts, vocabulary=small_kb.index.vocabulary,
                                 threshold=100) == [[0, 1, 2]]
        assert len(cluster_questions(texts, threshold=100)) == 3

    def test_biggest_group_first(self):
        """Groups come most frequent first."""
        texts = ["coin refund"] + ["delete account"] * 3 + ["coins refund"]
        assert [len(g) for g in cluster_questions(texts)] == [3, 2]

    def test_mistyped_words_still_group(self):
        """A mistyped word is still close enough, in short and in longer questions."""
        texts = ["delete developer account"] * 3 + ["delete developer acount",
                                                    "delete acount", "deleet account"]
        assert cluster_questions(texts) == [[0, 1, 2, 3, 4, 5]]

    def test_longer_questions_need_two_shared_words(self):
        """Two questions of three words or more are compared only when they share two."""
        texts = ["webhook signing secret rotation"] * 2 + ["webhook signing secrets rotated",
                                                          "webhook payload retry backoff"]
        assert cluster_questions(texts) == [[0, 1, 2], [3]]

    def test_long_questions_group_by_their_common_words(self):
        """Pasted logs (many words) are indexed by a few of their words, and still group."""
        rng = random.Random(3)
        vocab = [f"w{rng.randrange(10**6)}x" for _ in range(3000)]
        noise = [" ".join(rng.sample(vocab, 60)) for _ in range(100)]
        base = rng.sample(vocab, 40)
        copies = [" ".join(w for j, w in enumerate(base) if j % 9 != k) for k in range(3)]
        groups = cluster_questions([*noise, " ".join(base), *copies])
        assert groups[0] == [100, 101, 102, 103] and len(groups) == 101

    def test_synonym_phrases_fold_into_one_word(self):
        """A phrase of the knowledge's synonyms ("app store") groups with its one-word form."""
        texts = ["appstore listing rejected", "app store listing denied",
                 "play store listing refused"]
        vocabulary = parse_knowledge(SYNONYMS_KB, "s.yaml").index.vocabulary
        assert cluster_questions(texts, vocabulary=vocabulary, threshold=100) == [[0, 1, 2]]

    @pytest.mark.parametrize("enabled", [True, False])
    def test_garbage_collector_state_is_restored(self, enabled):
        """Grouping pauses Python's garbage collector, and leaves it as it found it."""
        was = gc.isenabled()
        try:
            (gc.enable if enabled else gc.disable)()
            cluster_questions(["delete account"] * 2)
            assert gc.isenabled() is enabled
        finally:
            (gc.enable if was else gc.disable)()


class TestFindGaps:
    def test_new_topic_becomes_a_draft_entry(self, kb):
        """Paraphrases of a question the FAQ lacks: one group, a new entry drafted as YAML."""
        report = find_gaps(planted_log(), kb)
        gap = report.gaps[0]
        assert gap.cluster.count == len(DELETE_ACCOUNT)
        assert gap.suggestion.kind == "new-entry" and gap.suggestion.entry is None
        assert len(gap.cluster.examples) == 3
        assert gap.cluster.examples[0] == "how do I delete my developer account?"
        [entry] = yaml.safe_load(gap.suggestion.yaml)
        assert entry["id"] == "delete-developer-account"
        assert entry["question"] == "How do I delete my developer account?"
        assert entry["answer"] == "TODO" and len(entry["phrasings"]) == 3
        assert parse_knowledge(KB + gap.suggestion.yaml, "test.yaml").get(entry["id"])

    def test_entry_in_other_words_becomes_phrasings(self, kb):
        """Paraphrases that point to one entry with a middling score become its phrasings."""
        report = find_gaps(planted_log(), kb)
        gap = next(g for g in report.gaps if g.suggestion.kind == "phrasings")
        assert gap.cluster.count == len(PENDING_REVIEW)
        assert gap.suggestion.entry == "review-time"
        assert 28 <= gap.suggestion.score < 60
        [entry] = yaml.safe_load(gap.suggestion.yaml)
        assert entry["id"] == "review-time"
        assert set(entry["phrasings"]) == set(PENDING_REVIEW)
        assert "review-time (line 5)" in gap.suggestion.yaml

    def test_unhelpful_answers_ask_for_a_look_at_the_answer(self, kb):
        """A group answered with an entry but marked not helpful points at that entry."""
        report = find_gaps(planted_log(), kb)
        gap = next(g for g in report.gaps if g.suggestion.kind == "improve-answer")
        assert gap.suggestion.entry == "not-approved" and gap.cluster.not_helpful == 3
        assert "did not help" in gap.suggestion.note
        [entry] = yaml.safe_load(gap.suggestion.yaml)  # the answer, ready to edit
        assert entry == {"id": "not-approved", "answer": kb.entry("not-approved").answer}
        assert "“why was my app declined”" in gap.suggestion.yaml

    def test_a_new_topic_may_go_to_not_covered_instead(self, kb):
        """The draft entry's comment names the other way: the knowledge's not_covered list."""
        gap = find_gaps(planted_log(), kb).gaps[0]
        assert gap.suggestion.kind == "new-entry"
        assert "list its question under not_covered: instead" in gap.suggestion.yaml

    def test_a_group_held_back_on_purpose_says_so(self):
        """Questions the knowledge lists under not_covered are tickets on purpose: the group
        names the not_covered question, and drafts an entry in case the FAQ should answer."""
        text = KB.replace("entries:", "not_covered:\n  - how do I delete a developer account\n"
                                      "entries:")
        with_list = parse_knowledge(text, "test.yaml")
        report = find_gaps(planted_log(), with_list)
        gap = next(g for g in report.gaps if g.cluster.count == len(DELETE_ACCOUNT))
        assert gap.suggestion.kind == "not-covered" and gap.suggestion.entry is None
        assert gap.suggestion.note == "not_covered on purpose ('how do I delete a developer account')"
        assert "take that question out of not_covered" in gap.suggestion.yaml
        [entry] = yaml.safe_load(gap.suggestion.yaml)
        assert entry["answer"] == "TODO" and entry["id"] == gap.suggestion.new_id
        # the other groups are as before
        kinds = sorted(g.suggestion.kind for g in report.gaps)
        assert kinds == ["improve-answer", "not-covered", "phrasings"]

    def test_what_is_left_out(self, kb):
        """Answered-now groups, cap/human tickets, answered questions and singletons are left out."""
        report = find_gaps(planted_log(), kb)
        assert len(report.gaps) == 3 and report.answered == 1
        questions = {q for g in report.gaps for q in g.cluster.texts}
        assert not questions & {"raise the user limit please", "can I talk to a human",
                                "how long does review take", "what's the weather like in Lisbon"}
        assert report.questions == len(planted_log())
        assert report.unanswered == len(DELETE_ACCOUNT) + len(PENDING_REVIEW) + 3 + 3 + 1

    def test_limit_and_min_count(self, kb):
        """limit caps the groups shown (the rest counted); min_count 1 shows singletons."""
        report = find_gaps(planted_log(), kb, limit=1)
        assert len(report.gaps) == 1 and report.hidden >= 2
        everything = find_gaps(planted_log(), kb, min_count=1, limit=None)
        assert any(g.cluster.count == 1 for g in everything.gaps)

    def test_json_has_the_group_and_the_yaml(self, kb):
        """A gap's JSON has its count, examples, suggestion and YAML."""
        obj = find_gaps(planted_log(), kb).gaps[0].to_json()
        assert obj["count"] == 5 and obj["suggestion"] == "new-entry"
        assert len(obj["examples"]) == 3 and obj["yaml"].lstrip().startswith("#")
        json.dumps(obj)

    def test_entries_picked_from_did_you_mean_offer_their_questions_as_phrasings(self, kb):
        """Questions whose askers picked an entry from "Did you mean…" are phrasings for it:
        the ones the knowledge does not answer with it yet, once each, most asked first."""
        rows = picks(("is review slow at the moment", "review-time"),
                     ("<@U123> is review slow at the moment", "review-time"),
                     ("review speed these days?", "review-time"),
                     ("how long is the review", "review-time"),  # a phrasing already
                     ("approval turnaround", "not-approved"),  # picked once: too few
                     ("approval turnaround", "gone-entry"))  # no longer in the knowledge
        rows += picks(("why so slow", "review-time"), feedback="not_helpful")  # did not help
        report = find_gaps([dict(r, id=i + 1) for i, r in enumerate(rows)], kb)
        assert report.gaps == () and len(report.picked) == 1
        gap = report.picked[0]
        assert (gap.suggestion.kind, gap.suggestion.entry) == ("picked", "review-time")
        assert gap.cluster.count == 4 and gap.cluster.ids == (1, 2, 3, 4)
        [entry] = yaml.safe_load(gap.suggestion.yaml)
        assert entry == {"id": "review-time", "phrasings": [
            "is review slow at the moment", "review speed these days?"]}
        assert "review-time (line 5) picked" in gap.suggestion.yaml
        assert gap.to_json()["suggestion"] == "picked"

    def test_picks_the_knowledge_now_answers_need_nothing(self, kb):
        """An entry picked only for questions it now answers is counted, not shown."""
        rows = picks(("how long is the review", "review-time"), ("app declined??", "not-approved"),
                     ("app declined??", "not-approved"))
        report = find_gaps([dict(r, id=i + 1) for i, r in enumerate(rows)], kb)
        assert report.picked == () and report.answered == 1

    def test_drafted_ids_are_unique_within_a_report(self, kb):
        """Two new-entry drafts never get the same id."""
        # different groups whose drafted ids would be cut to the same 40 characters
        texts = ["delete account developer portal settings page quickly"] * 3
        texts += ["delete account developer portal settings page forever"] * 2
        rows = [row(q, n=i) for i, q in enumerate(texts)]
        report = find_gaps(rows, kb, threshold=99)
        ids = [yaml.safe_load(g.suggestion.yaml)[0]["id"] for g in report.gaps]
        assert len(ids) == len(set(ids)) == 2


class TestWeeklyStats:
    def test_counts_per_iso_week(self):
        """Each ISO week counts questions, outcomes, feedback and its top entries."""
        monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
        rows = [
            {"at": monday, "action": "answer", "entry": "a", "feedback": "helpful"},
            {"at": monday + timedelta(days=6), "action": "answer", "entry": "a",
             "feedback": "not_helpful"},
            {"at": monday + timedelta(days=1), "action": "clarify", "entry": None},
            {"at": monday + timedelta(days=1), "action": "clarify", "entry": None, "picked": "a"},
            {"at": monday + timedelta(days=2), "action": "ticket", "entry": "cap",
             "feedback": None},
            {"at": monday + timedelta(days=14), "action": "answer", "entry": "b",
             "feedback": "solved"},
        ]
        weeks = weekly_stats(rows)
        assert [w.label for w in weeks] == ["2026-W45", "2026-W46", "2026-W47"]
        first, empty, last = weeks
        assert (first.questions, first.answered, first.clarified, first.ticketed) == (5, 2, 2, 1)
        assert (first.picked, first.helpful, first.not_helpful) == (1, 1, 1)
        assert first.rate(first.answered) == 40.0  # the pick's answer counts as the entry's use
        assert first.top_entries() == [("a", 3), ("cap", 1)]
        assert empty.questions == 0 and empty.start == date(2026, 11, 9)
        assert last.helpful == 1
        assert set(first.to_json()) >= {"week", "questions", "answer_rate", "clarify_rate",
                                        "picked", "ticket_rate", "helpful", "not_helpful",
                                        "top_entries"}

    def test_no_questions_no_weeks(self):
        """An empty log has no weeks."""
        assert weekly_stats([]) == []


class TestStatsHtml:
    def test_page_is_self_contained(self):
        """The page has inline CSS and SVG, and no script, link or URL to fetch."""
        weeks = weekly_stats(planted_log())
        page = stats_html(weeks, title="Test FAQ", since=NOW - timedelta(days=90),
                          generated_at=NOW)
        assert page.startswith("<!DOCTYPE html>") and "<style>" in page
        assert page.count("<svg") == 3
        lowered = page.lower()
        for banned in ("<script", "<link", "http:", "https:", "src=", "@import", "url("):
            assert banned not in lowered

    def test_text_is_escaped(self):
        """Entry ids and titles are HTML-escaped."""
        rows = [{"at": NOW, "action": "answer", "entry": "<img onerror=x>", "feedback": None}]
        page = stats_html(weekly_stats(rows), title="A & <B>")
        assert "<img" not in page and "&lt;img onerror=x&gt;" in page and "A &amp; &lt;B&gt;" in page

    def test_empty_report_says_so(self):
        """With no questions the page still renders and says there were none."""
        assert "No questions were recorded" in stats_html([])


# ------------------------------------------------------------------------------- commands


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code


@pytest.fixture
def logged(tmp_path):
    """A SQLite question log with the planted questions (recent) and two old ones."""
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    store = open_store(url)
    now = datetime.now(UTC)
    for r in planted_log():
        store.record_question(
            question=r["question"], action=r["action"], entry=r["entry"], score=r["score"],
            reason=r["reason"], requester=r["requester"], channel=r["channel"],
            at=now - (NOW - r["at"]),
        )
    for days in (100, 200):
        store.record_question(question="ancient question", action="ticket", entry=None,
                              score=3.0, reason="no_match", at=now - timedelta(days=days))
    for question in PICKED_REVIEW:
        store.record_question(question=question, action="clarify", entry=None, score=50.0,
                              reason=None, at=now - timedelta(days=1))
    rows = store.questions()
    for r in rows:  # feedback and picks as the Slack buttons would set them
        if r["entry"] == "not-approved":
            store.set_feedback(r["id"], "not_helpful")
        if r["action"] == "clarify":
            store.set_picked(r["id"], "review-time")
    store.close()
    kb_path = tmp_path / "test.yaml"
    kb_path.write_text(KB, encoding="utf-8")
    return url, str(kb_path)


class TestGapsCommand:
    def test_prints_groups_with_examples_and_yaml(self, logged, capsys):
        """`kb gaps` prints each group's count, examples and YAML, most frequent first."""
        url, kb_path = logged
        assert run("kb", "gaps", "--database-url", url, "--knowledge", kb_path) == 0
        out = capsys.readouterr().out
        assert re.search(r"^1\. 5 questions — new entry$", out, re.M)
        assert "“how do i delete my developer account?”" in out.lower()
        assert "  - id: delete-developer-account\n" in out
        assert "add as phrasings of review-time" in out

    def test_prints_what_askers_picked_from_did_you_mean(self, logged, capsys):
        """The entries picked from "Did you mean…" come after the groups, with their YAML."""
        url, kb_path = logged
        assert run("kb", "gaps", "--database-url", url, "--knowledge", kb_path) == 0
        out = capsys.readouterr().out
        section = out[out.index('Asked back, and the askers picked the entry'):]
        assert re.search(r"^4\. 2 picks — picked from 'Did you mean' for review-time: add as "
                         r"its phrasings$", section, re.M)
        assert "    - is review slow at the moment\n" in section

    def test_json_is_one_object_per_group(self, logged, capsys):
        """`kb gaps --json` prints one JSON object per group."""
        url, kb_path = logged
        assert run("kb", "gaps", "--json", "--database-url", url, "--knowledge", kb_path) == 0
        objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [o["count"] for o in objs] == sorted((o["count"] for o in objs), reverse=True)
        assert objs[0]["suggestion"] == "new-entry"

    def test_since_limits_the_window(self, logged, capsys):
        """--since 12h only considers the last 12 hours' questions."""
        url, kb_path = logged
        assert run("kb", "gaps", "--since", "12h", "--database-url", url, "--knowledge",
                   kb_path) == 0
        assert "No group of 2 or more" in capsys.readouterr().out

    def test_purge_deletes_old_questions_and_says_how_many(self, logged, capsys):
        """--purge-older-than 90d deletes older questions first and prints the count."""
        url, kb_path = logged
        assert run("kb", "gaps", "--purge-older-than", "90d", "--database-url", url,
                   "--knowledge", kb_path) == 0
        assert "purged 2 recorded questions" in capsys.readouterr().out
        store = open_store(url)
        assert all(r["question"] != "ancient question" for r in store.questions())
        store.close()

    def test_purge_default_comes_from_the_retention_setting(self, logged, capsys, monkeypatch):
        """Without AGE, --purge-older-than uses QUESTION_RETENTION_DAYS."""
        url, kb_path = logged
        monkeypatch.setenv("QUESTION_RETENTION_DAYS", "150")
        assert run("kb", "gaps", "--purge-older-than", "--database-url", url,
                   "--knowledge", kb_path) == 0
        assert "purged 1 recorded question " in capsys.readouterr().out

    def test_bad_duration_is_a_usage_error(self, logged, capsys):
        """An unreadable --since is refused by the parser (exit 2)."""
        url, _ = logged
        assert run("kb", "gaps", "--since", "soon", "--database-url", url) == 2
        assert "expected a duration" in capsys.readouterr().err


class TestStatsCommand:
    def test_table_per_week(self, logged, capsys):
        """`kb stats` prints one line per ISO week with rates and top entries."""
        url, kb_path = logged
        assert run("kb", "stats", "--database-url", url, "--knowledge", kb_path) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].split()[:5] == ["week", "questions", "answer", "clarify",
                                                   "picked"]
        assert re.search(r"^\d{4}-W\d\d\s+\d+\s+\d+%", out, re.M)

    def test_html_report_is_written(self, logged, tmp_path, capsys):
        """--html writes the self-contained page, titled with the knowledge's title."""
        url, kb_path = logged
        page = tmp_path / "report.html"
        assert run("kb", "stats", "--since", "365d", "--html", str(page), "--json",
                   "--database-url", url, "--knowledge", kb_path) == 0
        text = page.read_text(encoding="utf-8")
        assert "Test FAQ" in text and "<svg" in text
        weeks = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sum(w["questions"] for w in weeks) == len(planted_log()) + len(PICKED_REVIEW) + 2
        assert sum(w["picked"] for w in weeks) == len(PICKED_REVIEW)
        assert f"<b>{len(PICKED_REVIEW)} / {len(PICKED_REVIEW)}</b>\"did you mean\" picked" in text


class TestMemoryStore:
    def test_find_gaps_reads_any_store(self, kb):
        """A store in memory (sqlite://) logs questions as a store on disk does."""
        store = open_store("sqlite://")
        for q in DELETE_ACCOUNT:
            store.record_question(question=q, action="ticket", entry=None, score=10.0,
                                  reason="no_match")
        report = find_gaps(store.questions(), kb)
        assert report.gaps[0].cluster.count == len(DELETE_ACCOUNT)
