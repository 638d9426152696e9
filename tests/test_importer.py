"""Importing an FAQ (Markdown, plain text, reStructuredText, HTML) into knowledge YAML
(``faqbot kb import``)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.importer import (
    MAX_ID_CHARS,
    PHRASINGS_COMMENT,
    detect_format,
    entries_from_faq_text,
    faq_to_yaml,
    parse_faq,
    slugify,
)
from bot.knowledge import ID_RE, parse_knowledge

DATA = Path(__file__).parent / "data"
APP_REVIEW = (DATA / "app-review-faq.txt").read_text(encoding="utf-8")
WIDGETS = (DATA / "widgets-faq.md").read_text(encoding="utf-8")

APP_REVIEW_QUESTIONS = [
    "How long does the app review process take?",
    "What are the minimum requirements for submitting my app for approval?",
    "Does my mobile app need to be live on an app store?",
    "What are the scopes that I can apply for?",
    'What should I put in the "Submit for review" text box?',
    "How can I track the status of my application?",
    "Why was my app not approved?",
    "Is TikTok for Developers compatible with apps built in React Native?",
    "How can I get access to the APIs?",
    "How can I test the APIs for my app that is still in development?",
    "What APIs offer Marketing and Ad Campaigns?",
    "Can I increase my active user cap?",
    "Can I request an infinite user access token?",
    "Where can I get support for bugs and error messages for my app that's in production?",
    "Why are my posts private using the Content Posting API?",
]

WIDGETS_QUESTIONS = [
    "How do I log in?",
    "How do I log-in on a TV?",
    "What are the rate limits?",
    "Why do I get `429 Too Many Requests`?",
    "Can I use the API from a browser?",
]


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[^\W_]+", text.casefold()))


def answer_of(markdown: str) -> str:
    """The answer text made of ``markdown`` under a single question heading."""
    return entries_from_faq_text("## Question?\n\n" + markdown)[0]["answer"]


def assert_round_trips(text: str) -> None:
    """The YAML loads in faqbot's own loader with the same questions and answers."""
    parsed = parse_faq(text)
    kb = parse_knowledge(faq_to_yaml(text), "imported.yaml")
    assert [(e.id, e.question, e.answer) for e in kb] == [
        (e["id"], e["question"], e["answer"]) for e in parsed.entries
    ]


class TestPlainTextFaq:
    @pytest.fixture
    def parsed(self):
        return parse_faq(APP_REVIEW)

    def test_finds_every_question_of_the_faq(self, parsed):
        """The 15 stand-alone lines ending in '?' are the questions, in order."""
        assert [e["question"] for e in parsed.entries] == APP_REVIEW_QUESTIONS

    def test_title_comes_from_the_intro_line_naming_the_faq(self, parsed):
        """The intro's short line that says FAQ becomes the title; the rest is ignored."""
        assert parsed.title == "App Review FAQ"
        assert not any("The first step to obtain access" in e["answer"] for e in parsed.entries)

    def test_numbered_list_is_kept(self, parsed):
        """A numbered list keeps its numbers, one item per line, without the indentation."""
        answer = parsed.entries[2]["answer"]
        assert answer.splitlines() == [
            "1. If you have a mobile app, it must be available in the Apple and/or Google Play "
            "App Stores.",
            "2. If you have a web application and are applying for Login Kit access, you must "
            "provide a valid redirect URI.",
        ]

    def test_bullets_become_slack_bullets_between_paragraphs(self, parsed):
        """'  • item' lines become '• item'; the paragraphs around the list stay paragraphs."""
        paragraphs = parsed.entries[5]["answer"].split("\n\n")
        assert paragraphs[0].startswith("On the app page, you can view the status")
        assert [line.split(":")[0] for line in paragraphs[1].splitlines()] == [
            "• Draft", "• In review", "• Live", "• Not approved",
        ]
        assert paragraphs[2].startswith("Once your app is approved and live")

    def test_answers_never_lose_text(self, parsed):
        """Every line after a question, except the repeated page header, is in its answer."""
        answers = dict(zip(APP_REVIEW_QUESTIONS, (e["answer"] for e in parsed.entries), strict=True))
        current = None
        checked = 0
        for line in APP_REVIEW.splitlines()[:-1]:  # the last line repeats the page header
            text = re.sub(r"^\s*(?:\u2022|\d+\.)\s*", "", line).strip()
            if text in answers:
                current = text
            elif text and current is not None:
                assert text in answers[current]
                checked += 1
        assert checked == 25

    def test_repeated_page_header_at_the_end_is_dropped_with_a_note(self, parsed):
        """The trailing 'TikTok for Developers' footer is not part of the last answer."""
        assert parsed.entries[-1]["answer"].endswith("Terms of Service.")
        assert any("TikTok for Developers" in str(note) for note in parsed.notes)

    def test_ids_are_unique_short_slugs(self, parsed):
        """Ids are lower-case dashed slugs of the question, at most 40 characters."""
        ids = [e["id"] for e in parsed.entries]
        assert len(set(ids)) == len(ids)
        assert all(ID_RE.match(i) and len(i) <= MAX_ID_CHARS for i in ids)
        assert ids[0] == "how-long-does-the-app-review-process"
        assert ids[6] == "why-was-my-app-not-approved"

    def test_yaml_round_trips_through_the_loader(self):
        """The output is valid knowledge: faqbot's loader accepts it unchanged."""
        assert_round_trips(APP_REVIEW)

    def test_yaml_is_readable(self):
        """Multi-line answers are literal blocks; each entry asks for phrasings in a comment."""
        out = faq_to_yaml(APP_REVIEW, source="app-review-faq.txt")
        assert out.count("  answer: |") == 5
        assert out.count(f"  phrasings: []  {PHRASINGS_COMMENT}") == 15
        assert "  tags: []" in out
        assert out.startswith("# Knowledge imported by `faqbot kb import` from app-review-faq.txt")
        assert "• Draft: Your app" in out  # allow_unicode: no \u2022 escapes
        document = yaml.safe_load(out)
        assert list(document) == ["version", "title", "source", "entries"]
        assert document["source"] == "app-review-faq.txt"
        assert document["entries"][0]["phrasings"] == []


class TestMarkdownFaq:
    @pytest.fixture
    def parsed(self):
        return parse_faq(WIDGETS)

    def test_question_headings_not_sections_nor_code(self, parsed):
        """### headings are the questions; ## sections and '##' inside code are not."""
        assert [e["question"] for e in parsed.entries] == WIDGETS_QUESTIONS
        assert parsed.title == "Widget API FAQ"

    def test_answers_are_readable_text(self, parsed):
        """Bold, italics, bullets, numbers and code in the Slack style; links stay Markdown."""
        answers = [e["answer"] for e in parsed.entries]
        assert answers[0] == (
            "Use *Login Kit* with your client key. "
            "See [the Login Kit docs](https://example.com/login) for the full flow."
        )
        assert answers[1].splitlines() == [
            "TVs use the _device code_ flow:",
            "",
            "1. Request a code from `/oauth/device`.",
            "2. Show the code to the user.",
            "3. Poll until the user approves.",
        ]
        assert answers[2] == (
            "• 600 requests per minute per app\n"
            "• 100 requests per minute per user\n"
            "    ◦ bursts up to 200 are allowed\n"
            "• uploads count double\n"
            "\n"
            "Need more? Ask us at https://example.com/support."
        )
        assert "```\n## this is a comment in code, not a question\n" in answers[3]
        assert answers[3].endswith('Values < 1 mean "retry now" & values > 60 are capped.')
        assert answers[4].startswith("No. *Never* ship your client secret")

    def test_answers_never_lose_words(self, parsed):
        """Every word of a question's section appears in its answer."""
        headings = [f"### {q}" for q in WIDGETS_QUESTIONS] + ["## Accounts", "## Limits"]
        pattern = "|".join(re.escape(h) for h in headings)
        sections = re.split(f"^(?:{pattern})$", WIDGETS, flags=re.M)
        by_question = dict(zip(WIDGETS_QUESTIONS, sections[2:4] + sections[5:], strict=True))
        for entry in parsed.entries:
            missing = words(by_question[entry["question"]]) - words(entry["answer"])
            assert not missing, entry["id"]

    def test_yaml_round_trips_through_the_loader(self):
        """The Markdown import loads in faqbot's loader too."""
        assert_round_trips(WIDGETS)


class TestQuestionDetection:
    @pytest.mark.parametrize(
        "text",
        [
            "",
            "   \n\n",
            "Just some text.\n\nNo questions here.",
            "# Title only\n\nAn intro paragraph.",
            "- is this a bullet?\n- yes it is?",
            "A long paragraph. It ends with a question?",
            "```\nIs this code?\n\nyes\n```",
        ],
    )
    def test_no_questions_is_a_value_error(self, text):
        """Input without a detectable question raises ValueError naming the problem."""
        with pytest.raises(ValueError, match="no questions found"):
            faq_to_yaml(text)

    def test_plain_questions_may_be_bold_or_prefixed(self):
        """'**Q?**', 'Q: Q?' and '2. Q?' paragraphs are questions, without the decoration."""
        text = "**Is it free?**\n\nYes.\n\nQ: Is it fast?\n\nVery.\n\n2. Is it safe?\n\nSure."
        assert [e["question"] for e in entries_from_faq_text(text)] == [
            "Is it free?", "Is it fast?", "Is it safe?",
        ]

    def test_a_question_mark_inside_an_answer_paragraph_is_not_a_question(self):
        """Only a paragraph standing alone counts; an answer sentence ending in '?' stays."""
        text = "Can I retry?\n\nYes. Why not?\nIt is safe.\n\nIs it free?\n\nYes."
        entries = entries_from_faq_text(text)
        assert [e["question"] for e in entries] == ["Can I retry?", "Is it free?"]
        assert entries[0]["answer"] == "Yes. Why not?\nIt is safe."

    def test_wrapped_question_lines_are_joined(self):
        """A question wrapped over two lines is one question."""
        entries = entries_from_faq_text("How do I reset my\npassword?\n\nClick reset.")
        assert entries[0]["question"] == "How do I reset my password?"

    def test_question_without_answer_is_reported_not_imported(self):
        """A question with no answer is reported with its line; it becomes no entry or phrasing."""
        parsed = parse_faq("Can I pay?\n\nHow do I pay?\n\nBy card.\n\nWhy?")
        assert [(e["question"], e["phrasings"]) for e in parsed.entries] == [("How do I pay?", [])]
        assert "line 1: skipped 'Can I pay?': no answer follows it" in map(str, parsed.notes)
        assert "line 7: skipped 'Why?': no answer follows it" in map(str, parsed.notes)

    def test_a_question_asked_twice_is_one_entry(self):
        """The same question twice: the answers are merged and a note says so; the YAML loads."""
        text = "## Section\n\n## Is it free?\n\nYes.\n\n## Section\n\nSections.\n\n## Section\n\nMore."
        parsed = parse_faq(text)
        assert [(e["question"], e["answer"]) for e in parsed.entries] == [
            ("Is it free?", "Yes."), ("Section", "Sections.\n\nMore."),
        ]
        assert any("'Section' is asked twice" in str(n) for n in parsed.notes)
        assert any("line 1: skipped 'Section'" in str(n) for n in parsed.notes)
        assert_round_trips(text)

    def test_only_answerless_questions_is_a_value_error(self):
        """Questions with no answer at all are not a knowledge base."""
        with pytest.raises(ValueError, match="no questions found"):
            faq_to_yaml("Is it?\n\nReally?")

    def test_single_heading_level_with_subheadings_inside_answers(self):
        """With '##' questions, '###' headings are sub-headings of the answer, in bold."""
        text = "## How do I install it?\n\n### On macOS\n\nbrew install w\n\n## Does it work?\n\nYes"
        entries = entries_from_faq_text(text)
        assert [e["question"] for e in entries] == ["How do I install it?", "Does it work?"]
        assert entries[0]["answer"] == "*On macOS*\n\nbrew install w"

    def test_headings_need_not_end_in_question_marks(self):
        """Every heading at the question level is a question, '?' or not."""
        entries = entries_from_faq_text("## Rate limits\n\n600 a minute.\n\n## Pricing\n\nFree.")
        assert [e["question"] for e in entries] == ["Rate limits", "Pricing"]

    def test_setext_headings(self):
        """'Title\\n=====' is the title and 'Question?\\n-----' a question."""
        parsed = parse_faq("Widgets FAQ\n===========\n\nIs it free?\n-----------\n\nYes.")
        assert parsed.title == "Widgets FAQ"
        assert [e["question"] for e in parsed.entries] == ["Is it free?"]

    def test_windows_line_endings_and_bom(self):
        """CRLF line ends and a byte-order mark change nothing."""
        text = "\ufeffIs it free?\r\n\r\nYes,\r\nfor now.\r\n"
        assert entries_from_faq_text(text)[0] == {
            "id": "is-it-free", "question": "Is it free?", "answer": "Yes,\nfor now.",
            "phrasings": [], "tags": [],
        }


class TestIds:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("How do I log in?", "how-do-i-log-in"),
            ("What's new in v2.0?", "whats-new-in-v2-0"),
            ("Café «crème» — où?", "cafe-creme-ou"),
            ("¿Qué?", "que"),
            ("a" * 60, "a" * 40),
            ("How long does the app review process take?", "how-long-does-the-app-review-process"),
        ],
    )
    def test_slugify(self, text, expected):
        """Slugs are ASCII words joined by dashes, cut at a word boundary within 40 chars."""
        assert slugify(text) == expected

    def test_duplicate_slugs_get_numbered_suffixes(self):
        """Questions with the same slug get -2, -3 ids; non-Latin questions get 'question'."""
        text = "What's new?\n\nA.\n\nWhats new?\n\nB.\n\nWhat's new!?\n\nC.\n\n何ですか?\n\nD."
        assert [e["id"] for e in entries_from_faq_text(text)] == [
            "whats-new", "whats-new-2", "whats-new-3", "question",
        ]

    def test_suffixed_ids_stay_within_40_chars(self):
        """A suffix shortens the slug rather than making the id longer."""
        question = "Why does the widget uploader reject my very large files?"
        text = "\n\n".join(f"{question[:-1]}{'!' * n}?\n\nAnswer {n}." for n in range(3))
        ids = [e["id"] for e in entries_from_faq_text(text)]
        assert len(set(ids)) == 3
        assert all(len(i) <= MAX_ID_CHARS and ID_RE.match(i) for i in ids)
        assert ids[1].endswith("-2") and ids[2].endswith("-3")


class TestAnswerText:
    @pytest.mark.parametrize(
        ("markdown", "expected"),
        [
            ("**bold** and __also__", "*bold* and *also*"),
            ("*italic* and _italic_", "_italic_ and _italic_"),
            ("~~gone~~", "~gone~"),
            ("[docs](https://x.io/a)", "[docs](https://x.io/a)"),
            ('[docs](https://x.io "Title")', "[docs](https://x.io)"),
            ("[**bold** docs](https://x.io)", "[bold docs](https://x.io)"),
            ("![diagram](https://x.io/d.png)", "[diagram](https://x.io/d.png)"),
            ("[](https://x.io)", "https://x.io"),
            ("<https://x.io>", "https://x.io"),
            ("[mail us](mailto:help@x.io)", "[mail us](mailto:help@x.io)"),
            ("[setup](setup.md#mac) and [home](/)", "setup and home"),
            ("a < b > c", "a < b > c"),
            ("brew upgrade &lt;formula&gt; &amp; relax", "brew upgrade <formula> & relax"),
            ("brew upgrade <formula>", "brew upgrade <formula>"),
            ("`**not bold** <x> &lt;`", "`**not bold** <x> &lt;`"),
            ("a<br>b<br/>c", "a\nb\nc"),
            ('<b>bold</b>, <em>it</em>, <code>x &lt; y</code>, <small>(tiny)</small>',
             "*bold*, _it_, `x < y`, (tiny)"),
            ('<a href="https://x.io/a">docs</a> and <a href="/b">more</a>',
             "[docs](https://x.io/a) and more"),
            ("- one\n- two", "• one\n• two"),
            ("* one\n+ two\n\u2022 three", "• one\n• two\n• three"),
            ("1) one\n2) two", "1. one\n2. two"),
            ("- item that\n  wraps", "• item that wraps"),
            ("soft\nwrapped line", "soft wrapped line"),
            ("hard\\\nbreak", "hard\nbreak"),
            ("> quoted *text*", "> quoted _text_"),
            ("```js\nif (a < b) {}\n```", "```\nif (a < b) {}\n```"),
            ("```\nif ok:\n    run()\n\n  done()\n```", "```\nif ok:\n    run()\n\n  done()\n```"),
            ("- item\n\n  ```\n  code\n    more\n  ```", "• item\n\n```\ncode\n  more\n```"),
            ("#### Sub heading\n\ntext", "*Sub heading*\n\ntext"),
            ("Run:\n\n    gadget run\n      --fast", "Run:\n\n```\ngadget run\n  --fast\n```"),
            ("- item\n\n    continued", "• item\n\ncontinued"),
            ("[the guide][g], [G][] and [g]\n\n[g]: https://x.io/g 'Guide'",
             "[the guide](https://x.io/g), [G](https://x.io/g) and [g](https://x.io/g)"),
            ("[rel][r] and [none]\n\n[r]: ./setup.md", "rel and [none]"),
            ("| Plan | Price |\n|:-----|------:|\n| Free | 0 |", "Plan | Price\nFree | 0"),
            ("one\n\n---\n\ntwo", "one\n\ntwo"),
        ],
    )
    def test_markdown_to_answer_text(self, markdown, expected):
        """Markdown and inline HTML become plain readable text; entities are decoded, links
        to absolute addresses stay Markdown links, relative ones become their text."""
        assert answer_of(markdown) == expected


class TestYaml:
    def test_title_argument_wins(self):
        """An explicit title replaces the detected one; without any, the title is 'FAQ'."""
        assert yaml.safe_load(faq_to_yaml(APP_REVIEW, title="Reviews"))["title"] == "Reviews"
        assert yaml.safe_load(faq_to_yaml("Is it?\n\nYes."))["title"] == "FAQ"

    def test_no_thresholds_block(self):
        """Imported knowledge sets no thresholds: it is decided by the calibrated blend."""
        text = faq_to_yaml(WIDGETS)
        assert "thresholds" not in yaml.safe_load(text)
        assert not parse_knowledge(text).thresholds.tuned

    def test_awkward_answers_survive(self):
        """Answers with quotes, colons, '#', leading spaces and YAML syntax load back intact."""
        text = (
            "Does 'yes: no' work?\n\n    indented: true # not a comment\n- - [x]\n\n"
            "What about %TAG and ---?\n\n--- a\n... b\n&anchor *alias !!tag\n"
        )
        parsed = parse_faq(text)
        assert yaml.safe_load(faq_to_yaml(text))["entries"] == parsed.entries
        assert_round_trips(text)


# --------------------------------------------------------------------------- formats


def questions(text: str, **options) -> list[str]:
    return [e["question"] for e in parse_faq(text, **options).entries]


def answers(text: str, **options) -> dict[str, str]:
    return {e["question"]: e["answer"] for e in parse_faq(text, **options).entries}


def notes(text: str, **options) -> list[str]:
    return [str(n) for n in parse_faq(text, **options).notes]


class TestFormatDetection:
    @pytest.mark.parametrize(
        ("filename", "expected"),
        [("faq.md", "markdown"), ("FAQ.markdown", "markdown"), ("faq.rst", "rst"),
         ("faq.HTML", "html"), ("faq.htm", "html")],
    )
    def test_extension_decides(self, filename, expected):
        """A known extension picks the format, whatever the text looks like."""
        assert detect_format("Is it free?\n\nYes.", filename) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("<!-- saved -->\n<!DOCTYPE html>\n<html><h2>Is it free?</h2><p>Yes.</html>", "html"),
            ("Widgets\n~~~~~~~\n\n.. note:: hi\n\nIs it free?\n-----------\n\nSee :ref:`x`.",
             "rst"),
            ("# Widgets\n\n## Is it free?\n\nYes, see [docs](https://x.io).", "markdown"),
            ("Is it free?\n\nYes.", "text"),
        ],
    )
    def test_content_decides_without_a_known_extension(self, text, expected):
        """Without a known extension (or with .txt) the text is sniffed."""
        assert detect_format(text, "faq.txt") == expected
        assert detect_format(text) == expected

    def test_format_can_be_forced(self):
        """``fmt`` overrides detection; an unknown one is a ValueError."""
        assert parse_faq("<h2>Is it free?</h2><p>Yes &amp; no.", fmt="html").entries[0][
            "answer"] == "Yes & no."
        with pytest.raises(ValueError, match="unknown format"):
            parse_faq("Is it?\n\nYes.", fmt="docx")


class TestMarkdownDocuments:
    def test_yaml_front_matter_is_reported_not_imported(self):
        """Hugo's front matter is skipped with a note; its title becomes the title."""
        text = ("---\ntitle: \"Gadget FAQ\"\nweight: 3\ndescription: >\n  Questions?\n---\n\n"
                "## Does it float?\n\nOnly in salt water.\n")
        parsed = parse_faq(text)
        assert parsed.title == "Gadget FAQ"
        assert [(e["question"], e["answer"]) for e in parsed.entries] == [
            ("Does it float?", "Only in salt water.")]
        assert "skipped the YAML front matter (lines 1-6)" in str(parsed.notes[0])

    def test_toml_and_pelican_front_matter(self):
        """TOML (+++) and Pelican 'Key: value' headers are front matter too."""
        toml = '+++\ntitle = "Gizmo FAQ"\n+++\n\n## Is it loud?\n\nNo.'
        assert parse_faq(toml).title == "Gizmo FAQ"
        assert questions(toml) == ["Is it loud?"]
        pelican = "Title: Gizmo help\nlicense: MIT\n\n## Is it loud?\n\nNo."
        assert parse_faq(pelican).title == "Gizmo help"
        assert any("metadata front matter (lines 1-2)" in n for n in notes(pelican))
        assert questions("Q: Is it loud?\nA: No.") == ["Is it loud?"]  # not front matter

    def test_rules_at_the_top_are_not_front_matter(self):
        """'---' separators around a question are rules, not a YAML front matter."""
        text = "---\n\nIs it free?\n\nYes.\n\n---\n\nIs it fast?\n\nVery.\n"
        assert answers(text) == {"Is it free?": "Yes.", "Is it fast?": "Very."}
        assert notes(text) == []

    def test_html_comments_are_reported_with_their_line(self):
        """A '<!-- Source -->' line and a comment in an answer are notes, not text."""
        text = ("<!-- Source: somewhere -->\n# Gadgets\n\n## Is it safe?\n\nYes.\n<!-- todo:\n"
                "check --> Mostly.\n\n```\n<!-- code keeps it -->\n```\n")
        parsed = parse_faq(text)
        assert str(parsed.notes[0]) == "line 1: skipped an HTML comment: '<!-- Source: somewhere -->'"
        assert str(parsed.notes[1]) == "line 7: skipped an HTML comment: '<!-- todo: check -->'"
        assert parsed.entries[0]["answer"] == "Yes.\n\nMostly.\n\n```\n<!-- code keeps it -->\n```"

    def test_text_before_the_first_question_is_reported(self):
        """An intro paragraph is a note with its line, never an entry."""
        text = "# Gadgets\n\nWelcome to the FAQ.\n\n## Is it safe?\n\nYes."
        assert questions(text) == ["Is it safe?"]
        assert notes(text) == ["line 3: skipped text before the first question: 'Welcome to the FAQ.'"]

    def test_statement_headings_are_questions(self):
        """When the entries' headings are statements, they are the questions, '##' sections not."""
        text = ("## Releases\n\n### Gadget ships no binaries\n\nBuild from source.\n\n"
                "### Nightly builds are unsupported.\n\nUse a release.\n\n"
                "## Licence\n\n### You have questions about the licence.\n\nRead LICENSE.\n")
        assert answers(text) == {
            "Gadget ships no binaries": "Build from source.",
            "Nightly builds are unsupported.": "Use a release.",
            "You have questions about the licence.": "Read LICENSE.",
        }

    def test_empty_section_is_reported(self):
        """A question heading with nothing under it is a note, not an entry or a phrasing."""
        text = "## Is it free?\n\n## Is it fast?\n\nVery.\n"
        parsed = parse_faq(text)
        assert [(e["question"], e["phrasings"]) for e in parsed.entries] == [("Is it fast?", [])]
        assert [str(n) for n in parsed.notes] == ["line 1: skipped 'Is it free?': no answer follows it"]

    def test_inline_html_in_headings_and_answers(self):
        """Tags are read as text markup; entities are decoded; unknown '<words>' stay."""
        text = ('## How do I upgrade <code>gadget</code>?\n\n'
                'Run `brew upgrade <formula>` or brew upgrade &lt;formula&gt;.<br/>'
                '<small>(macOS)</small> <a id="x"></a>Use <b>sudo</b> &amp; <kbd>Enter</kbd>.\n')
        assert answers(text) == {
            "How do I upgrade gadget?":
                "Run `brew upgrade <formula>` or brew upgrade <formula>.\n(macOS) Use *sudo* & `Enter`.",
        }

    def test_bold_and_numbered_questions_under_section_headings(self):
        """Bold or numbered question lines under a few section headings are the questions."""
        text = ("## Billing\n\n**1. How do I pay?**\n\nBy card.\n\n**2. Can I get a refund?**\n\n"
                "Within 30 days.\n\n## Support\n\n3) Who answers?\n\nWe do.\n")
        assert questions(text) == ["How do I pay?", "Can I get a refund?", "Who answers?"]

    def test_details_summary_questions_and_numbered_headings(self):
        """GitHub's <details><summary> blocks are questions; '## 2.' numbering is dropped."""
        text = ("# Help\n\n<details>\n<summary><b>Is it free?</b></summary>\n\nYes &amp; always."
                "\n</details>\n\n<details><summary>Is it fast?</summary>\nVery.\n</details>\n")
        assert answers(text) == {"Is it free?": "Yes & always.", "Is it fast?": "Very."}
        assert questions("## 1. How do I pay?\n\nCard.\n\n## Q: Refunds?\n\nNo.") == [
            "How do I pay?", "Refunds?"]

    def test_plain_text_q_and_a_pairs(self):
        """'Q:'/'A:' lines, adjacent or not, are a question and its answer; the prefixes go."""
        text = "Q: Is it free?\nA: Yes.\n\nQ: Support hours\n\nA: Nine to five,\nweekdays.\n"
        assert answers(text) == {"Is it free?": "Yes.", "Support hours": "Nine to five,\nweekdays."}

    def test_hugo_shortcodes_and_relative_links_without_base_url(self):
        """Without --base-url a relative link or a ref shortcode is its text: no dead link."""
        text = ('## Where are the docs?\n\nSee [setup]({{< ref "/docs/setup.md#mac" >}}), '
                '[FAQ](faq.html), [home](/) and [site](https://x.io/a). '
                '{{< note >}}Beware.{{< /note >}}\n')
        parsed = parse_faq(text)
        assert parsed.entries[0]["answer"] == (
            "See setup, FAQ, home and [site](https://x.io/a). Beware.")
        assert any("dropped the Hugo shortcode 'note'" in str(n) for n in parsed.notes)

    def test_hugo_shortcodes_and_relative_links_with_base_url(self):
        """With a base URL they become absolute links; ref paths are site paths."""
        text = ('## Where are the docs?\n\nSee [setup]({{< ref "docs/setup.en.md#mac" >}}), '
                '[FAQ](faq.html#q) and [home](/).\n')
        answer = parse_faq(text, base_url="https://gadget.dev/docs/help/").entries[0]["answer"]
        assert answer == (
            "See [setup](https://gadget.dev/docs/setup/#mac), "
            "[FAQ](https://gadget.dev/docs/help/faq.html#q) and [home](https://gadget.dev/).")


RST_FAQ = """\
.. Source: written for these tests

.. _gadget-faq:

Gadget FAQ
~~~~~~~~~~

.. contents::
    :local:

General
=======

What is Gadget?
---------------

Gadget is a *tiny* tool, see :ref:`the intro <intro>` and :doc:`/users/config`.
It runs on **every** OS [#os]_.

.. [#os] Almost: https://gadget.dev/os

How do I install ``gadget``?
----------------------------

Use :option:`--user` with pip::

    pip install --user gadget

.. code-block:: bash
    :emphasize-lines: 1

    gadget --version

.. note::

    Read `the guide <https://gadget.dev/guide>`__ and `setup <setup.html>`_ first.

What if it breaks?
------------------

.. seealso::
    :ref:`troubleshooting`

.. image:: broken.png

.. tabs::

    Restart it.

Usage
=====

Can it sync?
------------

- Yes, with :stconf:opt:`sync.enabled`.
- Only when online.
"""


class TestRstDocuments:
    @pytest.fixture
    def parsed(self):
        return parse_faq(RST_FAQ, filename="faq.rst")

    def test_section_titles_are_questions(self, parsed):
        """'---' titles are questions, '===' groups sections, '~~~' the title; literals kept."""
        assert parsed.format == "rst"
        assert parsed.title == "Gadget FAQ"
        assert [e["question"] for e in parsed.entries] == [
            "What is Gadget?", "How do I install ``gadget``?", "What if it breaks?", "Can it sync?",
        ]

    def test_sphinx_roles_are_their_text(self, parsed):
        """:ref: and :doc: read as their label or target; code-like roles as code."""
        answer = parsed.entries[0]["answer"]
        assert answer.startswith(
            "Gadget is a _tiny_ tool, see the intro and /users/config. It runs on *every* OS [1].")
        assert answer.endswith("[1] Almost: https://gadget.dev/os")
        assert parsed.entries[3]["answer"] == "• Yes, with `sync.enabled`.\n• Only when online."

    def test_directives_are_read_sensibly(self, parsed):
        """Literal and code blocks stay code; note, seealso and unknown directives keep text."""
        assert parsed.entries[1]["answer"] == (
            "Use `--user` with pip:\n\n```\npip install --user gadget\n```\n\n"
            "```\ngadget --version\n```\n\n"
            "*Note:* Read [the guide](https://gadget.dev/guide) and setup first."
        )
        assert parsed.entries[2]["answer"] == "See also: troubleshooting\n\nRestart it."

    def test_comments_contents_and_images_are_reported(self, parsed):
        """What has no place in an answer is a note with its line."""
        assert [str(n) for n in parsed.notes] == [
            "line 1: skipped a comment: 'Source: written for these tests'",
            "line 8: dropped the table of contents",
            "line 44: dropped the image 'broken.png'",
        ]

    def test_a_one_question_document(self):
        """A lone section title that asks something is a question, not the title."""
        parsed = parse_faq("Is it free?\n===========\n\nYes.\n", fmt="rst")
        assert (parsed.title, questions("Is it free?\n===========\n\nYes.\n", fmt="rst")) == (
            None, ["Is it free?"])

    def test_one_question_under_a_title_and_more_constructs(self):
        """A lone question under the title stays a question (docutils would make it a
        subtitle); versionadded, definition lists and nested lists read naturally."""
        text = ("Gadget\n======\n\nHow do I configure it?\n----------------------\n\n"
                "term\n    Its *meaning*.\n\n1. One\n\n   - nested\n\n2. Two\n\n"
                ".. versionadded:: 1.2\n   The ``x`` option.\n")
        parsed = parse_faq(text, fmt="rst")
        assert parsed.title == "Gadget"
        assert [(e["question"], e["answer"]) for e in parsed.entries] == [(
            "How do I configure it?",
            "*term*\n    Its _meaning_.\n\n1. One\n\n   ◦ nested\n\n2. Two\n\n"
            "New in version 1.2: The `x` option.",
        )]

    def test_relative_links_resolve_against_the_base_url(self):
        """'setup <setup.html>'_ becomes a link once the base URL is known."""
        answer = parse_faq(RST_FAQ, fmt="rst", base_url="https://gadget.dev/docs/").entries[1]["answer"]
        assert answer.endswith("[setup](https://gadget.dev/docs/setup.html) first.")


HTML_PAGE = """\
<!-- saved from https://gadget.dev/faq -->
<!DOCTYPE html>
<html lang="en">
<head><title>Gadget FAQ</title><style>h2 { color: red }</style></head>
<body>
<header><h1>Gadget</h1><p>Home of Gadget</p></header>
<nav><a href="/">Home</a> <a href="/faq">FAQ</a></nav>
<div class="toc"><ul><li><a href="#free">Is it free?</a></ul></div>
<p>Questions people ask.
<h2 id="basics">Basics</h2>
<h3 id="free">Is it free?<a class="self-link" href="#free"></a></h3>
<p>Yes &amp; it stays free. Run <code>gadget &lt;command&gt;</code>.
<p>See <a href="https://gadget.dev/pricing">pricing</a> and <a href="/terms">the terms</a>.
<h3>How do I install it?</h3>
<ol>
 <li><p>Download it.
 <li>Run:
<pre>gadget install
  --user</pre>
</ol>
<h2>More</h2>
<h3>Is it <em>fast</em>?</h3>
<p>Very.
<aside>Related: <a href="/blog">blog</a></aside>
<footer><p>&copy; Gadget</p></footer>
<script>console.log("<h3>not a question?</h3>")</script>
</body>
</html>
"""


class TestHtmlPages:
    @pytest.fixture
    def parsed(self):
        return parse_faq(HTML_PAGE, filename="faq.html")

    def test_headings_are_questions_and_chrome_is_dropped(self, parsed):
        """h3 questions under h2 sections; head, header, nav, toc, aside, footer, script go."""
        assert parsed.title == "Gadget FAQ"
        assert [e["question"] for e in parsed.entries] == [
            "Is it free?", "How do I install it?", "Is it fast?",
        ]
        assert parsed.entries[2]["answer"] == "Very."
        everything = yaml.safe_dump(parsed.entries)
        for chrome in ("Home of Gadget", "Related", "©", "console", "color"):
            assert chrome not in everything

    def test_entities_decoded_and_links_plain(self, parsed):
        """Answers are plain text: entities decoded, a relative link is its text."""
        assert parsed.entries[0]["answer"] == (
            "Yes & it stays free. Run `gadget <command>`.\n\n"
            "See [pricing](https://gadget.dev/pricing) and the terms."
        )
        with_base = parse_faq(HTML_PAGE, fmt="html", base_url="https://gadget.dev/faq")
        assert with_base.entries[0]["answer"].endswith(
            "and [the terms](https://gadget.dev/terms).")

    def test_lists_and_code_blocks(self, parsed):
        """Unclosed <li>/<p> are list items; <pre> is a code block."""
        assert parsed.entries[1]["answer"] == (
            "1. Download it.\n2. Run:\n```\ngadget install\n  --user\n```")

    def test_comment_and_intro_are_reported(self, parsed):
        """The '<!-- saved from -->' comment and the text before the first question are notes."""
        assert [str(n) for n in parsed.notes] == [
            "line 1: skipped an HTML comment: 'saved from https://gadget.dev/faq'",
            "line 9: skipped text before the first question: 'Questions people ask.'",
        ]

    def test_definition_lists_and_details(self):
        """<dt>/<dd> and <details><summary> pairs are questions and answers."""
        page = ("<html><body><main><h1>Help</h1><dl><dt>Is it free?</dt><dd><p>Yes.</p></dd>"
                "<dt><strong>Is it open source?</strong><dd>MIT.</dl>"
                "<details><summary>Can I <i>self-host</i> it?</summary><p>Sure.</p></details>"
                "</main><div class='sidebar'><dt>Not this?</dt><dd>No.</dd></div></body></html>")
        assert answers(page, fmt="html") == {
            "Is it free?": "Yes.", "Is it open source?": "MIT.", "Can I self-host it?": "Sure.",
        }

    def test_accordion_articles_keep_their_own_headers(self):
        """An <article>'s <header> holds its question (in a button, as accordions do); the
        page's header and footer, screen-reader-only links and other buttons are chrome."""
        page = ('<html><body><header><a class="sr-only" href="#main">Skip</a></header><section>'
                '<article><header><h2 class="accordion-header"><button>Is it free?</button></h2>'
                '</header><div class="accordion-body"><p>Yes.<button>Copy</button></div></article>'
                '<article><header><h2>Is it fast?</h2></header><p>Very.</article></section>'
                '<footer>Footer</footer></body></html>')
        parsed = parse_faq(page, fmt="html")
        assert [(e["question"], e["answer"]) for e in parsed.entries] == [
            ("Is it free?", "Yes."), ("Is it fast?", "Very.")]
        assert parsed.notes == []

    def test_a_glossary_inside_an_answer_does_not_make_questions(self):
        """Question headings win over a longer <dl> of terms inside one answer."""
        page = ("<h3>What do the words mean?</h3><dl><dt>Gadget</dt><dd>The tool.</dd>"
                "<dt>Gizmo</dt><dd>Its plug-in.</dd><dt>Widget</dt><dd>Its UI.</dd></dl>"
                "<h3>Is it free?</h3><p>Yes.")
        assert questions(page, fmt="html") == ["What do the words mean?", "Is it free?"]
        assert answers(page, fmt="html")["What do the words mean?"].startswith("*Gadget*\n\nThe tool.")

    def test_quotes_and_questions_outside_main(self):
        """<blockquote> lines are quoted; a <main> without the questions does not hide them."""
        page = ("<main><p>Welcome.</main><h2>Is it?</h2>"
                "<blockquote><p>Quote <b>x</b>.<br>Two</blockquote><p>After.")
        assert answers(page, fmt="html") == {"Is it?": "> Quote *x*.\n> Two\n\nAfter."}

    def test_bold_question_paragraphs_without_headings(self):
        """A page with no headings: stand-alone bold questions are the questions."""
        page = "<p><b>Is it free?</b><p>Yes.<p><strong>Is it fast?</strong><p>Very."
        assert answers(page, fmt="html") == {"Is it free?": "Yes.", "Is it fast?": "Very."}


@pytest.mark.parametrize(
    ("text", "filename"),
    [
        (RST_FAQ, "faq.rst"),
        (HTML_PAGE, "faq.html"),
        ("---\ntitle: x\n---\n<!-- c -->\nIntro.\n\n## Is it?\n\nYes.\n\n## Is it?\n\nAgain.", "a.md"),
        ("Q: Is it free?\nA: Yes.\n\nQ: is it FREE?\nA: Still yes.", "a.txt"),
    ],
)
def test_kb_check_accepts_every_format(text, filename):
    """The YAML of each format loads in faqbot's loader, questions and answers intact."""
    parsed = parse_faq(text, filename=filename)
    kb = parse_knowledge(faq_to_yaml(text, filename=filename), "imported.yaml")
    assert [(e.id, e.question, e.answer) for e in kb] == [
        (e["id"], e["question"], e["answer"]) for e in parsed.entries
    ]


def test_notes_are_yaml_comments():
    """Every note is repeated as a '# note:' comment at the top of the YAML."""
    out = faq_to_yaml("<!-- c -->\nIntro.\n\n## Is it?\n\nYes.")
    assert "# note: line 1: skipped an HTML comment: '<!-- c -->'\n" in out
    assert "# note: line 2: skipped text before the first question: 'Intro.'\n" in out


# --------------------------------------------------------------------------- properties

_word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_sentence = st.lists(_word, min_size=1, max_size=8).map(lambda ws: " ".join(ws).capitalize())
_question = _sentence.map(lambda s: s + "?")
_paragraph = st.lists(_sentence.map(lambda s: s + "."), min_size=1, max_size=3).map(" ".join)
_answer = st.lists(_paragraph, min_size=1, max_size=3)
_faq = st.lists(st.tuples(_question, _answer), min_size=1, max_size=8, unique_by=lambda qa: qa[0])


@settings(max_examples=100, deadline=None)
@given(_faq)
def test_generated_plain_faqs_import_exactly(faq):
    """Any plain FAQ of question lines and answer paragraphs comes back question for answer."""
    text = "\n\n".join(q + "\n\n" + "\n\n".join(a) for q, a in faq)
    entries = entries_from_faq_text(text)
    assert [(e["question"], e["answer"]) for e in entries] == [
        (q, "\n\n".join(a)) for q, a in faq
    ]
    assert yaml.safe_load(faq_to_yaml(text))["entries"] == entries


_line = st.one_of(
    st.sampled_from(
        [
            "", "", "", "# Title", "## Section", "### A question?", "#### Sub", "Is it free?",
            "How do I pay?", "**Bold question?**", "- bullet", "  • bullet", "1. step", "```",
            "---", "=====", "> quote", "[link](https://x.io)", "<https://x.io>", "a < b & c",
            "Q: why?", "    indented?", "|", "key: value", "   ", "\t", "\\",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=30).map("\n".join))
@example("## Section\nIs it free?\n---\n### A question?\n## Section\n0")
def test_any_text_gives_loadable_yaml_or_a_value_error(text):
    """Whatever the input, the importer raises ValueError or writes YAML faqbot loads."""
    try:
        out = faq_to_yaml(text)
    except ValueError as exc:
        assert "no questions found" in str(exc)
        return
    document = yaml.safe_load(out)
    assert document["entries"]
    parse_knowledge(out, "imported.yaml")  # kb check accepts whatever the importer writes


_rst_line = st.sampled_from(
    [
        "", "", "", "Title", "=====", "-----", "~~~~~", "Is it free?", ".. note::", "   indented",
        ".. code-block:: py", "    :linenos:", "    code", ".. seealso:: :ref:`x`", ":ref:`a <b>`",
        "``lit``", "`link <https://x.io>`_", "`rel <y.html>`__", ".. _t:", ".. image:: x.png",
        "* item", "#. item", "::", "    literal", ".. [#f] foot", "text [#f]_", "term", "   def",
        ":field: value", ".. contents::", ".. toctree::", ".. weird:: arg", "   :opt: 1",
        "+---+---+", "| a | b |", ".. ", "`", "**", "&amp;", "<x>",
    ]
)
_html_bit = st.sampled_from(
    [
        "<h2>", "</h2>", "<h3>", "</h3>", "Is it free?", "text", "<p>", "</p>", "<ul>", "<li>",
        "</ul>", "<ol>", "</ol>", "<pre>", "</pre>", "<code>", "</code>", "<a href='x'>",
        "<a href='https://x.io'>", "</a>", "<dl>", "<dt>", "<dd>", "</dl>", "<details>",
        "<summary>", "</summary>", "<nav>", "</nav>", "<script>", "</script>", "<table>", "<tr>",
        "<td>", "</table>", "<br>", "&amp;", "&lt;", "<!-- c -->", "<b>", "</b>", "<main>",
        "</main>", "<div class='toc'>", "</div>", "\n", " ", "<title>", "</title>", "<em>",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.tuples(st.just("rst"), st.lists(_rst_line, max_size=30).map("\n".join)),
    st.tuples(st.just("html"), st.lists(_html_bit, max_size=40).map("".join)),
))
def test_any_rst_or_html_gives_loadable_yaml_or_a_value_error(case):
    """The rst and HTML parsers never crash: YAML faqbot loads, or 'no questions found'."""
    fmt, text = case
    try:
        out = faq_to_yaml(text, fmt=fmt)
    except ValueError as exc:
        assert "no questions found" in str(exc)
        return
    parse_knowledge(out, "imported.yaml")
