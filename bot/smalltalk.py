"""Messages that only greet or thank, or have no words to ask about: not questions, so neither
answered from the FAQ nor turned into tickets (pure)."""

from __future__ import annotations

from bot.normalize import words

__all__ = ["small_talk"]


# Words of a message that only greets or thanks ("hi!", "thanks, that fixed it", "ok cool 👍"),
# or wishes well ("hope your week is going well": its words are everyday ones the FAQ's
# phrasings also use, so the lexical matcher alone would answer it about review times).
_GREETING_WORDS = frozenset(
    "hi hello hey heya hiya yo howdy morning afternoon evening good gm there all team folks "
    "everyone bot faqbot hope hoping you your youre is are was going doing well "
    "week weekend day today happy friday monday".split()
)
_THANKS_CORE = frozenset(
    "thanks thank thx ty tysm tyvm cheers appreciated appreciate perfect great awesome cool "
    "nice ok okay kk k got solved fixed sorted worked works helped".split()
)
_THANKS_WORDS = _THANKS_CORE | frozenset(
    "you so very much a lot the that this it that's thats now all good super makes sense "
    "sounds was has have just it's its yes yep yeah great bot faqbot".split()
)
# a message of emoji alone has no words (normalize drops them); these say thanks
_THANKS_EMOJI = ("👍", "🙏", "🙌", "✅")


def small_talk(text: str) -> str | None:
    """``"greeting"`` or ``"thanks"`` when ``text`` only greets or thanks, ``"empty"`` when it
    has no words but numbers ("?", "👍", "2"); else None (and None for no text at all).

    Such messages are not questions: answering them from the FAQ, or opening a ticket, would
    be noise (a DM "thanks, that fixed it" or "👍" must not become a support ticket).
    """
    found = words(text)
    if text.strip() and not any(c.isalpha() for w in found for c in w):
        return "thanks" if any(e in text for e in _THANKS_EMOJI) else "empty"
    if not found or len(found) > 8:
        return None
    if all(w in _GREETING_WORDS for w in found):
        return "greeting"
    if all(w in _THANKS_WORDS for w in found) and any(w in _THANKS_CORE for w in found):
        return "thanks"
    return None
