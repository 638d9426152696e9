"""Normalising Slack message text into plain lower-case words: a table, then properties."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.normalize import MAX_INPUT_CHARS, SHORTHAND, normalize, strip_slack_markup, words


class TestNormalizeTable:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            # mentions of users, channels, user groups and broadcasts carry no question words
            ("<@U0BOT42> how long does review take", "how long does review take"),
            ("<@U1|bob> can you help", "can you help"),
            ("ask in <#C1|general> please", "ask in please"),
            ("<!subteam^S1|@team> review status?", "review status"),
            ("<!here> anyone?", "anyone"),
            ("<!channel> is the API down", "is the api down"),
            ("<!date^1392734382^{date}|Feb 18, 2014> release", "release"),
            ("hey<@U1>there", "hey there"),
            # links: a label is text the user wrote, a bare URL is not
            ("see <https://x.io|the docs> now", "see the docs now"),
            ("see <https://x.io> now", "see now"),
            ("mail <mailto:a@x.io|support>", "mail support"),
            ("open https://x.io/a?b=1 now", "open now"),
            # emoji codes and emoji
            (":eyes: review time?", "review time"),
            ("thanks :+1::skin-tone-2: a lot", "thanks a lot"),
            ("ok :white_check_mark::tada: done", "ok done"),
            ("\U0001f680 launch \U0001f44d\U0001f3fd now \u2764\ufe0f", "launch now"),
            ("family \U0001f468\u200d\U0001f469\u200d\U0001f467 emoji", "family emoji"),
            ("meet at 10:30:45 today", "meet at 10 30 45 today"),
            # code: inline code is words the user typed, a fenced block is pasted output
            ("why does `video.list` fail", "why does video list fail"),
            ("error ```Traceback\n  File x\nKeyError``` why", "error why"),
            ("unclosed ```fence eats the rest", "unclosed"),
            # Slack's formatting and escaping
            ("is *review* _really_ ~slow~", "is review really slow"),
            ("Q&amp;A &lt;tag&gt;", "q a tag"),
            ("> quoted question\nmore", "quoted question more"),
            # Unicode folding
            ("\uff21\uff30\uff29 \uff4b\uff45\uff59 \uff11\uff12", "api key 12"),
            ("\ufb01le", "file"),
            ("Stra\u00dfe", "strasse"),
            ("CAF\u00c9 cafe\u0301", "caf\u00e9 caf\u00e9"),
            ("\u13a0\u13a1 \uab70", "\uab70\uab71 \uab70"),  # Cherokee folds to lower case
            ("\u0936\u093e\u0932\u094b\u092e \u0939\u093f\u0902\u0926\u0940", "\u0936\u093e\u0932\u094b\u092e \u0939\u093f\u0902\u0926\u0940"),  # noqa: E501
            ("\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd"),
            # quotes and apostrophes
            ("what\u2019s the cap", "whats the cap"),
            ("don't won`t can\u2018t", "dont wont cant"),
            ("\u201creview\u201d \u2018time\u2019 \"x\"", "review time x"),
            ("users' apps", "users apps"),
            # whitespace, punctuation, invisible characters
            ("  how\t\tlong \n\n does\u00a0it\u2003take  ", "how long does it take"),
            ("why?!... (really) [x] {y}", "why really x y"),
            ("re\u200bview ap\u200dp soft\u00adware", "review app software"),
            ("\ufeffbom at start", "bom at start"),
            ("\u200fRTL\u200e mark \u202bembed\u202c \u2067isolate\u2069", "rtl mark embed isolate"),
            ("", ""),
            ("   ", ""),
            ("?!:)", ""),
            # chat shorthand for with / without; paths and URLs keep their letters
            ("prod issue w/ the api", "prod issue with the api"),
            ("W/the token, w/o a scope", "with the token without a scope"),
            ("see docs/w/x and a/w/b", "see docs w x and a w b"),
            # chat shorthand, written out; only whole words
            ("wat scopes r there", "what scopes are there"),
            ("can u test b4 launch? ur docs say no", "can you test before launch your docs say no"),
            ("error msgs in prod, 48 hrs", "error messages in prod 48 hours"),
            ("R u sure", "are you sure"),
            ("rust run burr ours", "rust run burr ours"),
            ("rn app", "rn app"),
        ],
    )
    def test_normalize(self, text, expected):
        """Slack markup, emoji and punctuation go; words stay, lower-cased and single-spaced."""
        assert normalize(text) == expected

    def test_words_splits_the_normalized_text(self):
        """words() is normalize() split on spaces."""
        assert words("<@U1> How *long*?") == ["how", "long"]

    def test_strip_slack_markup_keeps_case_and_punctuation(self):
        """strip_slack_markup only removes markup; folding is normalize's job."""
        assert strip_slack_markup("<@U1> Hi, see <https://x.io|Docs> :eyes:") == "  Hi, see  Docs   "

    def test_not_text_gives_empty(self):
        """A non-string (a missing Slack field) normalizes to the empty string."""
        assert normalize(None) == ""  # type: ignore[arg-type]
        assert normalize(b"bytes") == ""  # type: ignore[arg-type]

    def test_long_input_is_cut(self):
        """Only the first MAX_INPUT_CHARS characters count."""
        assert normalize("word " * 5000) == " ".join(["word"] * (MAX_INPUT_CHARS // 5))


# --------------------------------------------------------------------------- properties

_slack_fragment = st.sampled_from(
    [
        "<@U1>", "<@U1|bob>", "<#C1|general>", "<!subteam^S1|@team>", "<!here>", "<!channel>",
        "<https://x.io|label>", "<https://x.io>", "https://x.io/a", ":eyes:", ":+1::skin-tone-2:",
        "`code`", "```block```", "```", "`", "&amp;", "&lt;", "&gt;", "*", "_", "~", "<", ">", "|",
        ":", "'", "\u2019", "\u201c", "\u200b", "\u200d", "\u200f", "\u202e", "\ufeff", "\u00ad",
        "\u0301", "\u0903", "\u05b8", "\ufdfa", "\uff21", "\u1e9e", "\u0130", "\u13a0", "\uab70",
        "\u2160", "\U0001f680", "\U0001f3fd", "\n", "\t", " ", "  ", "A", "z", "9", "\u00df",
    ]
)
slack_text = st.one_of(
    st.text(),
    st.lists(st.one_of(_slack_fragment, st.text(max_size=5)), max_size=40).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(slack_text)
@example("\ufdfa" * MAX_INPUT_CHARS)  # NFKC makes this 18 times longer than the cut
@example("\U0001f680\u0301x")  # a combining mark after an emoji
@example("\u13a0")  # casefold() gives upper-case Cherokee
def test_normalize_is_total_idempotent_and_clean(text):
    """Any text: no exception, a fixed point, lower case, single spaces, no edge spaces."""
    out = normalize(text)
    assert isinstance(out, str)
    assert normalize(out) == out
    assert not any(ch.isupper() for ch in out)
    assert "  " not in out
    assert out == out.strip()
    assert set(out) & set("\t\n\r<>:*`&") == set()
    assert words(text) == out.split()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_ascii_words_survive(text):
    """Plain ASCII words (no Slack markup) come through exactly, lower-cased; chat shorthand
    ("u", "b4") is written out."""
    plain = "".join(ch if ch.isalnum() else " " for ch in text)
    assert normalize(plain) == " ".join(SHORTHAND.get(w, w) for w in plain.lower().split())


ADVERSARIAL = {
    "letters": "a" * 40_000,
    "words": "review time " * 3_334,
    "mention openers": "<@" * 20_000,
    "link openers": "<https://x|" * 3_637,
    "fences": "```" * 13_334,
    "backticks": "`a" * 20_000,
    "colons": ":a" * 20_000,
    "emoji": ":eyes:" * 6_667,
    "entities": "&amp;" * 8_000,
    "combining marks": "\u0301" * 40_000,
    "expanding": "\ufdfa" * 40_000,
    "emoji chars": "\U0001f680" * 40_000,
    "zero width": "\u200b" * 40_000,
    "mixed": ("<@U1> :+1: `x` <https://x.io|l> \u2019s \uff21 " * 1100)[:40_000],
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_bounded_time_on_40000_characters(text):
    """A 40,000-character message costs under 0.1 s, whatever it holds (about 1 ms typically)."""
    assert len(text) >= 39_990
    normalize(text)  # warm the regex cache
    start = time.perf_counter()
    for _ in range(5):
        normalize(text)
    assert (time.perf_counter() - start) / 5 < 0.1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
def test_ascii_fast_path_matches_the_unicode_path(text):
    """The ASCII shortcut folds exactly as the general Unicode path does."""
    from bot.normalize import _fold, _fold_unicode

    assert _fold(text) == _fold_unicode(text)
