"""Knowledge lint and "Add to FAQ" drafting (bot.maintain), and ``faqbot kb lint``."""

from __future__ import annotations

import json

import pytest
import yaml

from bot.cli import main
from bot.knowledge import parse_knowledge
from bot.maintain import draft_from_ticket, entry_yaml, lint, question_text, unique_id

# A planted confusable pair: billing-date carries a phrasing that is really about refunds.
PLANTED = "how do I get my money back for an order"
SHOP = f"""\
version: 1
title: Shop FAQ
thresholds: {{answer: 60, clarify: 40, margin: 6}}
entries:
  - id: refund
    question: How do I get a refund?
    phrasings:
      - refund my purchase
      - I want my money back
      - request a refund for an order
      - can I return an item for a refund
      - how long does a refund take
      - refund policy
    answer: "Ask for a refund within 30 days: <https://shop.example/refunds|Refunds>."
  - id: billing-date
    question: When will I be charged?
    phrasings:
      - what day is my card charged
      - billing date
      - when does the subscription renew
      - when do you take the payment
      - {PLANTED}
      - charge date for my plan
    answer: "You are charged on the first day of each billing period."
    links:
      - {{title: Billing, url: "https://shop.example/billing"}}
  - id: shipping
    question: How long does shipping take?
    phrasings: [delivery time, when will my parcel arrive]
    answer: "Orders arrive in 3-5 working days. <https://shop.example/shipping|Shipping>"
"""
PLANTED_LINE = 22  # the line of the planted phrasing in SHOP


def moved(text: str) -> str:
    """SHOP with the planted phrasing moved to the refund entry (the suggested fix)."""
    text = text.replace(f"      - {PLANTED}\n", "")
    return text.replace("      - refund policy\n", f"      - refund policy\n      - {PLANTED}\n")


def with_entry(extra: str) -> str:
    return SHOP + extra


@pytest.fixture
def shop():
    return parse_knowledge(SHOP, "shop.yaml")


class TestLintConfusions:
    def test_planted_phrasing_is_confused_with_the_other_entry(self, shop):
        """A phrasing matching another entry better than its own is a warning naming both."""
        report = lint(shop, text=SHOP)
        found = [f for f in report.of("confused-with") if f.entry == "billing-date"
                 and f.other == "refund"]
        assert len(found) == 1
        finding = found[0]
        assert finding.severity == "warning"
        assert [p.text for p in finding.phrasings] == [PLANTED]
        score = finding.phrasings[0]
        assert score.other > score.own and score.outcome == "answer refund"
        assert finding.line == PLANTED_LINE
        assert "billing-date" in finding.message and "refund" in finding.message

    def test_suggestion_is_yaml_moving_the_phrasing(self, shop):
        """The suggestion parses as YAML: the planted phrasing under the entry it belongs to."""
        finding = next(f for f in lint(shop, text=SHOP).of("confused-with")
                       if f.entry == "billing-date" and f.other == "refund")
        assert yaml.safe_load(finding.suggestion) == [{"id": "refund", "phrasings": [PLANTED]}]
        assert finding.suggestion.startswith("  # ")  # indented as under entries:

    def test_applying_the_suggestion_clears_the_warning(self):
        """With the phrasing moved to its entry, billing-date is no longer confused with refund."""
        text = moved(SHOP)
        report = lint(parse_knowledge(text, "shop.yaml"), text=text)
        assert not [f for f in report.of("confused-with")
                    if f.entry == "billing-date" and f.other == "refund"]

    def test_close_scores_are_a_suggestion(self):
        """A phrasing whose own entry leads by less than the margin is a close-to suggestion."""
        text = SHOP.replace("clarify: 40, margin: 6", "clarify: 30, margin: 30")
        report = lint(parse_knowledge(text, "shop.yaml"), text=text)
        close = report.of("close-to")
        assert close and all(f.severity == "suggestion" for f in close)
        for f in close:
            for p in f.phrasings:
                assert p.own >= p.other > p.own - 30

    def test_without_the_text_findings_point_at_the_entry(self, shop):
        """Without the YAML text, a finding's line is its entry's first line."""
        finding = next(f for f in lint(shop).of("confused-with") if f.entry == "billing-date")
        assert finding.line == shop.entry("billing-date").line

    def test_duplicate_phrasings_across_entries(self):
        """The same phrasing in two entries once normalised is a warning."""
        text = SHOP.replace("      - billing date\n", "      - Refund policy?\n")
        report = lint(parse_knowledge(text, "shop.yaml"), text=text)
        dup = report.of("duplicate-phrasing")
        assert [(f.entry, f.other, f.severity) for f in dup] == [
            ("billing-date", "refund", "warning")
        ]

    def test_findings_are_sorted_worst_first(self, shop):
        """Warnings come before suggestions."""
        severities = [f.severity for f in lint(shop, text=SHOP).findings]
        assert severities == sorted(severities, key=["warning", "suggestion"].index)


class TestLintHeldBack:
    """A phrasing its entry answers, that the `not_covered` questions would hold back."""

    @staticmethod
    def _text(*not_covered: str) -> str:
        from tests.conftest import SMALL_KB

        items = "".join(f"  - {q}\n" for q in not_covered)
        return SMALL_KB.replace("handoff:", f"not_covered:\n{items}handoff:")

    def test_a_not_covered_question_too_close_to_a_phrasing_is_a_warning(self):
        text = self._text("how long is the review on google play", "is there a flutter sdk")
        found = lint(parse_knowledge(text, "kb.yaml"), text=text).of("held-back")
        assert len(found) == 1
        finding = found[0]
        assert (finding.severity, finding.entry) == ("warning", "review-time")
        assert [p.text for p in finding.phrasings] == ["how long is the review"]
        assert "via 'how long is the review on google play'" in finding.message
        assert finding.phrasings[0].other >= finding.phrasings[0].own
        assert finding.line == text.splitlines().index(
            "    phrasings: [review eta, how long is the review, when will approval come]") + 1
        assert "- how long is the review" in finding.suggestion

    def test_none_without_a_clash_or_without_the_list(self):
        from tests.conftest import SMALL_KB

        text = self._text("is there a flutter sdk")
        assert lint(parse_knowledge(text, "kb.yaml"), text=text).of("held-back") == []
        assert lint(parse_knowledge(SMALL_KB, "kb.yaml")).of("held-back") == []


class TestLintEntries:
    def test_few_phrasings(self, shop):
        """An entry with fewer than 5 phrasings is a suggestion; others are not flagged."""
        found = lint(shop).of("few-phrasings")
        assert [f.entry for f in found] == ["shipping"]
        assert "2 phrasings" in found[0].message

    def test_few_phrasings_only_where_thresholds_are_tuned(self):
        """Knowledge without thresholds (what kb import writes) is decided from each entry's
        question and answer: no entry is asked for phrasings. With thresholds, one with fewer
        than 3 says it is matched by its question and answer meanwhile."""
        untuned = SHOP.replace("thresholds: {answer: 60, clarify: 40, margin: 6}\n", "")
        assert lint(parse_knowledge(untuned, "kb.yaml")).of("few-phrasings") == []
        bare = with_entry("""\
  - id: gift-cards
    question: Do you sell gift cards?
    answer: "Yes, see <https://shop.example/gift|gift cards>."
""")
        (found,) = [f for f in lint(parse_knowledge(bare, "kb.yaml")).of("few-phrasings")
                    if f.entry == "gift-cards"]
        assert "0 phrasings" in found.message and "matched by its question and answer" in found.message

    def test_answer_without_link(self):
        """An answer without <http…> and without links: is flagged; a links: list counts."""
        text = with_entry("""\
  - id: opening-hours
    question: When are you open?
    phrasings: [opening hours, are you open on sunday, store hours, when do you close, hours]
    answer: "Every day from 9 to 5."
""")
        found = lint(parse_knowledge(text, "shop.yaml")).of("no-link")
        assert [f.entry for f in found] == ["opening-hours"]
        assert yaml.safe_load(found[0].suggestion)[0]["links"][0]["url"].startswith("https://")
        assert "as 3 of the 4 answers here have" in found[0].message

    def test_answers_without_links_are_fine_where_most_have_none(self):
        """An FAQ whose answers mostly say everything themselves (as imported FAQs often do)
        is not asked for links, entry by entry."""
        text = SHOP.replace(' <https://shop.example/shipping|Shipping>"', '"').replace(
            ": <https://shop.example/refunds|Refunds>.", ".")
        assert lint(parse_knowledge(text, "shop.yaml")).of("no-link") == []
        # half is not most: 2 linked answers of 4
        half = SHOP.replace(' <https://shop.example/shipping|Shipping>"', '"') + """\
  - id: opening-hours
    question: When are you open?
    answer: "Every day from 9 to 5."
"""
        assert lint(parse_knowledge(half, "shop.yaml")).of("no-link") == []

    @pytest.mark.parametrize(
        ("size", "code", "severity"),
        [(1400, None, None), (1600, "long-answer", "suggestion"),
         (3100, "answer-too-long", "warning")],
    )
    def test_long_answers(self, size, code, severity):
        """Over 1,500 characters is a suggestion; over 3,000 (a Slack section) a warning."""
        answer = ("word " * size)[: size - 30] + " <https://shop.example/x|more>"
        text = with_entry(f"""\
  - id: long-one
    question: Tell me everything?
    phrasings: [everything, all of it, the whole story, full details, tell me more]
    answer: "{answer}"
""")
        report = lint(parse_knowledge(text, "shop.yaml"))
        codes = {f.code: f.severity for f in report.findings if f.entry == "long-one"}
        assert codes.get("long-answer", codes.get("answer-too-long")) == severity
        if code:
            assert code in codes

    def test_report_counts(self, shop):
        """The report counts entries and phrasings (questions included)."""
        report = lint(shop)
        assert (report.entries, report.phrasings) == (3, 17)
        assert len(report.warnings) + len(report.suggestions) == len(report.findings)


class TestDraftFromTicket:
    def test_answered_with_an_entry_adds_a_phrasing(self, shop):
        """With answered_with, the draft adds the question to that entry's phrasings."""
        draft = draft_from_ticket(shop, "<@U123> where's my refund??", answered_with="refund")
        assert yaml.safe_load(draft) == [{"id": "refund", "phrasings": ["where's my refund??"]}]
        assert "line 5" in draft

    def test_a_phrasing_already_there_says_so(self, shop):
        """A question that is already a phrasing is not suggested twice."""
        draft = draft_from_ticket(shop, "Refund policy", answered_with="refund")
        assert "already a phrasing" in draft

    def test_new_entry_from_question_and_staff_reply(self, shop):
        """Without an entry, a new entry is drafted from the question and the staff reply."""
        reply = "Go to *Settings → Account*.\nThen press <https://shop.example/delete|Delete>."
        draft = draft_from_ticket(shop, "how do I delete my account", staff_reply=reply)
        [entry] = yaml.safe_load(draft)
        assert entry == {
            "id": "delete-account",
            "question": "How do I delete my account?",
            "phrasings": [],
            "answer": reply,
        }

    def test_draft_pastes_into_valid_knowledge(self, shop):
        """Appended under entries:, a new-entry draft loads as knowledge."""
        draft = draft_from_ticket(shop, "Can I pay with PayPal: yes or no?", staff_reply="Yes.")
        kb = parse_knowledge(SHOP + draft, "shop.yaml")
        assert kb.entries[-1].answer == "Yes." and kb.entries[-1].question.endswith("?")

    def test_without_a_reply_the_answer_is_todo(self, shop):
        """No staff reply: answer TODO; an unknown answered_with falls back to a new entry."""
        [entry] = yaml.safe_load(draft_from_ticket(shop, "gift cards?", answered_with="nope"))
        assert entry["answer"] == "TODO" and entry["id"] == "gift-cards"

    def test_new_ids_do_not_clash(self, shop):
        """A drafted id never repeats an existing one."""
        assert unique_id("refund", [e.id for e in shop]) == "refund-2"

    def test_empty_question_is_refused(self, shop):
        """A question with no text is a ValueError."""
        with pytest.raises(ValueError):
            draft_from_ticket(shop, "  <@U1>  ")


class TestYamlHelpers:
    def test_question_text_cleans_slack_text(self):
        """Mentions and extra spaces go; a capital and a question mark are added."""
        assert question_text("<@U0BOT>  how do I   delete my account") == (
            "How do I delete my account?"
        )

    def test_multi_line_strings_are_literal_blocks(self):
        """Multi-line answers are written as | blocks, readable in the YAML file."""
        text = entry_yaml({"id": "x", "answer": "one\ntwo"})
        assert "answer: |" in text and yaml.safe_load(text)[0]["answer"] == "one\ntwo"


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code


class TestLintCommand:
    def test_prints_findings_with_path_and_line_and_yaml(self, tmp_path, capsys):
        """`kb lint` prints PATH:LINE findings, pasteable YAML and a summary; exit 0."""
        path = tmp_path / "shop.yaml"
        path.write_text(SHOP, encoding="utf-8")
        assert run("kb", "lint", str(path)) == 0
        out = capsys.readouterr().out
        assert f"{path}:{PLANTED_LINE}: warning: [confused-with]" in out
        assert f"  - id: refund\n    phrasings:\n      - {PLANTED}\n" in out
        assert "3 entries, 17 phrasings" in out

    def test_json_is_one_object_per_finding(self, tmp_path, capsys):
        """`kb lint --json` prints one JSON object per finding."""
        path = tmp_path / "shop.yaml"
        path.write_text(SHOP, encoding="utf-8")
        assert run("kb", "lint", "--json", str(path)) == 0
        objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        planted = [o for o in objs if o["code"] == "confused-with" and o["entry"] == "billing-date"]
        assert planted[0]["other"] == "refund"
        assert planted[0]["phrasings"][0]["phrasing"] == PLANTED
        assert {"severity", "line", "message", "suggestion"} <= set(planted[0])

    def test_strict_fails_on_warnings(self, tmp_path, capsys):
        """With --strict, warnings make the exit code 1."""
        path = tmp_path / "shop.yaml"
        path.write_text(SHOP, encoding="utf-8")
        assert run("kb", "lint", "--strict", "-q", str(path)) == 1

    def test_broken_file_exits_1_with_problems(self, tmp_path, capsys):
        """A file that does not load is broken: PATH:LINE problems and exit 1."""
        path = tmp_path / "bad.yaml"
        path.write_text("entries:\n  - id: x\n    question: q?\n", encoding="utf-8")
        assert run("kb", "lint", str(path)) == 1
        assert f"{path}:2: " in capsys.readouterr().out
