"""Normalisation of Slack message text into plain lower-case words (pure functions).

Usage::

    >>> normalize("<@U0BOT42> How long does *review* take? :eyes: <https://x.io|docs>")
    'how long does review take docs'

Every function here is total (never raises on any ``str``) and :func:`normalize` is idempotent.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["MAX_INPUT_CHARS", "SHORTHAND", "expand_shorthand", "normalize", "plain_text",
           "strip_slack_markup", "words"]

# Longer messages are cut before any work: the question is nearly always in the first lines,
# and this bounds the time any single message can cost.
MAX_INPUT_CHARS = 4000

_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
# <@U123>, <@U123|name>, <#C123|general>, <!here>, <!subteam^S123|@team>, <!date^...|text>
_MENTION = re.compile(r"<[@#!][^<>]*>")
_LINK_WITH_LABEL = re.compile(r"<(?:https?|mailto|tel):[^<>|]*\|([^<>]*)>")
_BARE_LINK = re.compile(r"<(?:https?|mailto|tel):[^<>]*>|\bhttps?://\S+")
# not right after a letter or digit, so that times and ratios ("10:30:45") keep their numbers
_EMOJI_CODE = re.compile(r"(?<![^\W_]):[a-z0-9_+'-]+(?:::skin-tone-\d)?:", re.I)
_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    }
)
_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")
# Chat shorthand for "with" and "without" ("prod issue w/ the api"), which punctuation
# removal would turn into a stray "w": not inside a path or URL ("a/w/b", "http://w/x").
_WITH = re.compile(r"(?<![\w/])w/(o(?![\w/])|(?=[^\W\d_]|\s|$))", re.IGNORECASE)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Chat shorthand, read as the words it stands for ("wat scopes r there", "test b4 launch",
# "error msgs in prod"). Only forms that mean one thing in a developer's chat: not "rn"
# (right now, or React Native), "y", "n" or "yr".
SHORTHAND = {
    "u": "you", "ur": "your", "r": "are", "ya": "you", "b4": "before", "bc": "because",
    "cuz": "because", "coz": "because", "bcz": "because", "abt": "about", "thru": "through",
    "tho": "though", "smth": "something", "sth": "something", "ppl": "people",
    "msg": "message", "msgs": "messages", "wat": "what", "wut": "what", "wht": "what",
    "hrs": "hours", "hr": "hour", "mins": "minutes", "wks": "weeks", "wk": "week",
    "yrs": "years", "tmrw": "tomorrow", "tmr": "tomorrow", "rly": "really",
    "prob": "probably", "lmk": "let me know",
}
_SHORTHAND_WORDS = frozenset(SHORTHAND)
_SHORTHAND = re.compile(r"(?<![\w'])(" + "|".join(SHORTHAND) + r")(?![\w'])", re.IGNORECASE)


def strip_slack_markup(text: str) -> str:
    """Remove mentions, code blocks and emoji codes; keep link labels and inline code text."""
    # Each step runs only when its trigger character is there: most text has no markup, and
    # loading a large knowledge file normalizes every phrasing and answer.
    if "`" in text:
        text = _CODE_BLOCK.sub(" ", text)
        text = _INLINE_CODE.sub(r" \1 ", text)
    if "<" in text:
        text = _LINK_WITH_LABEL.sub(r" \1 ", text)
    if "<" in text or "://" in text:
        text = _BARE_LINK.sub(" ", text)
    if "<" in text:
        text = _MENTION.sub(" ", text)
    if "&" in text:
        # Slack sends &amp; &lt; &gt; escaped; decode so "Q&amp;A" reads like "Q&A"
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if ":" in text:
        text = _EMOJI_CODE.sub(" ", text)
    return text


_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^<>]*>")
_MARKUP = re.compile(r"[*_`#>|]+")


def plain_text(answer: str) -> str:
    """An answer (Markdown or Slack mrkdwn) as prose to read for meaning: no code blocks,
    links as their text, no markup characters, HTML entities decoded. Paragraph breaks stay."""
    if "`" in answer:
        answer = _CODE_BLOCK.sub(" ", answer)
    answer = html.unescape(answer)
    if "](" in answer:
        answer = _MD_LINK.sub(r"\1", answer)
    if "<" in answer:
        answer = _HTML_TAG.sub(" ", _LINK_WITH_LABEL.sub(r" \1 ", answer))
    return _MARKUP.sub(" ", answer)


def expand_shorthand(text: str) -> str:
    """``text`` with each chat shorthand word (:data:`SHORTHAND`) written out in full."""
    return _SHORTHAND.sub(lambda m: SHORTHAND[m.group(1).lower()], text)


def _written_out(folded: str) -> str:
    """:func:`expand_shorthand` for folded text, after a set test of its words that is several
    times cheaper than the regular expression: most text has no shorthand."""
    if _SHORTHAND_WORDS.isdisjoint(folded.split(" ")):
        return folded
    return expand_shorthand(folded)


def _fold(text: str) -> str:
    if text.isascii():
        # The common case, about 10 times faster: in ASCII, NFKC changes nothing, casefold()
        # is lower(), and the letters and digits are exactly [a-z0-9] once lower-cased.
        text = text.lower().replace("`", "'")
        if "'" in text:
            text = _APOSTROPHE.sub("", text)
        return " ".join(_ASCII_WORD.findall(text))
    return _fold_unicode(text)


def _fold_unicode(text: str) -> str:
    # casefold() maps one script (Cherokee) to upper case; lower() after it undoes that
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold().lower()
    text = _APOSTROPHE.sub("", text)  # what's -> whats, don't -> dont
    kept = []
    for ch in text:
        if ch.isalnum():
            kept.append(ch)
        elif unicodedata.category(ch)[0] == "M" and kept and kept[-1] != " ":
            # a combining mark (or several: Hebrew points, Devanagari vowel signs) on a letter
            # is part of it; after an emoji or a space it is dropped
            kept.append(ch)
        elif unicodedata.category(ch) != "Cf":  # zero-width and bidi marks vanish, not split
            kept.append(" ")
    return " ".join(unicodedata.normalize("NFKC", "".join(kept)).split())


def normalize(text: str) -> str:
    """Lower-case words of ``text`` separated by single spaces; markup, emoji, punctuation gone."""
    if not isinstance(text, str):
        return ""
    text = strip_slack_markup(text[:MAX_INPUT_CHARS])
    if "/" in text:
        text = _WITH.sub(lambda m: " without " if m.group(1) else " with ", text)
    folded = _cut(_written_out(_fold(text)))
    # casefold/NFKC can, for a few rare characters, produce something the next pass changes
    # again; a bounded fixed-point loop makes the function idempotent for every input.
    for _ in range(3):
        again = _fold(folded)
        if again == folded:
            break
        folded = again
    return _cut(folded)


def _cut(folded: str) -> str:
    """At most MAX_INPUT_CHARS of folded text, ending at a word's end when there is one.

    NFKC expands a few characters (U+FDFA is 18 letters), so the output is cut as well: this
    bounds the work of the passes that follow, and normalizing the output again cuts nothing.
    """
    if len(folded) <= MAX_INPUT_CHARS:
        return folded
    cut = folded[: MAX_INPUT_CHARS + 1]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut[:MAX_INPUT_CHARS]


def words(text: str) -> list[str]:
    """The words of ``normalize(text)``."""
    return normalize(text).split()
