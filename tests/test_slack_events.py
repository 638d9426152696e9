"""Pure predicates over real Slack payloads (tests/data/slack): answer or not, text, thread."""

from __future__ import annotations

import pytest

from bot.slack import events
from tests.slack_helpers import payload

BOT = "UBOT"


def event_of(name: str, **changes: object) -> dict:
    event = payload(name)["event"]
    event.update(changes)
    return event


class TestShouldAnswer:
    @pytest.mark.parametrize(
        ("name", "changes", "expected"),
        [
            ("event_app_mention_basic", {}, True),
            ("event_app_mention_thread", {}, True),
            ("event_message_im_basic", {}, True),
            ("event_message_im_thread", {}, True),
            ("event_app_mention_edited", {}, False),
            ("event_app_mention_from_bot", {}, False),
            ("event_message_im_from_bot", {}, False),
            ("event_message_bot_message", {}, False),
            ("event_message_from_app_bot", {}, False),
            ("event_message_changed", {}, False),
            ("event_message_changed_im_tombstone", {}, False),
            ("event_message_deleted", {}, False),
            ("event_message_channel_join", {}, False),
            ("event_message_me_message", {}, False),
            ("event_app_home_opened_messages", {}, False),
            # our own message in a DM (the bot user, no bot_id): never answer ourselves
            ("event_message_im_basic", {"user": BOT}, False),
            # a DM edit carrying `edited` without the message_changed subtype
            ("event_message_im_basic", {"edited": {"user": "W222", "ts": "1.2"}}, False),
            # channel messages: only in FAQ_CHANNELS (C111 here), top level, no mention
            ("event_message_file_share", {}, True),
            ("event_message_file_share", {"channel": "C999"}, False),
            ("event_message_file_share", {"thread_ts": "1.0"}, False),
            ("event_message_file_share", {"text": "<@UBOT> hi"}, False),
            ("event_message_thread_broadcast", {}, False),
        ],
    )
    def test_table(self, name: str, changes: dict, expected: bool) -> None:
        """Mentions and DMs from people are answered; bots, edits, deletions, joins are not."""
        assert events.should_answer(event_of(name, **changes), BOT, frozenset({"C111"})) is expected

    def test_channel_messages_need_faq_channels(self) -> None:
        """Without FAQ_CHANNELS a plain channel message is never answered."""
        assert not events.should_answer(event_of("event_message_file_share"), BOT)

    def test_thread_broadcast_mention_is_answered(self) -> None:
        """A mention sent to the channel from a thread (thread_broadcast) is still a mention."""
        event = event_of("event_message_thread_broadcast", type="app_mention")
        assert events.should_answer(event, BOT)


class TestQuestionText:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("<@UBOT> how long does review take?", "how long does review take?"),
            ("<@UBOT|faqbot>   how long\n  does it take", "how long does it take"),
            ("is &lt;b&gt; &amp; ok?", "is <b> & ok?"),
            ("see <https://example.com|the docs>", "see the docs"),
            ("see <https://example.com>", "see https://example.com"),
            ("in <#C123|general> please", "in #general please"),
            ("<!channel> anyone?", "@channel anyone?"),
            ("<!subteam^S1|@support> help", "@support help"),
            ("ask <@U123> maybe", "ask <@U123> maybe"),
            ("<@UBOT>", ""),
        ],
    )
    def test_table(self, text: str, expected: str) -> None:
        """Slack markup is undone and only the bot's own mention is removed."""
        assert events.question_text({"text": text}, BOT) == expected

    def test_missing_text(self) -> None:
        """A mention without a text field (real payload) gives an empty question."""
        assert events.question_text(event_of("event_app_mention_thread"), BOT) == ""


class TestReplyThread:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("event_app_mention_basic", "1595926230.009600"),  # a thread on the mention
            ("event_app_mention_thread", "123.456"),  # the existing thread
            ("event_message_im_basic", None),  # a top-level DM is answered in place
            ("event_message_im_thread", "1726133698.626339"),  # a DM thread stays a thread
        ],
    )
    def test_table(self, name: str, expected: str | None) -> None:
        """Mentions are answered in a thread; DMs in the conversation (or its thread)."""
        assert events.reply_thread_ts(event_of(name)) == expected


class TestRouteAndKeys:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("event_app_mention_basic", "mention"),
            ("event_message_im_basic", "dm"),
            ("event_message_file_share", "channel"),
            ("event_app_home_opened_messages", None),
        ],
    )
    def test_route(self, name: str, expected: str | None) -> None:
        """Each event comes through one front door (or none)."""
        assert events.route(event_of(name)) == expected

    def test_dedupe_keys(self) -> None:
        """A delivery is keyed by its event id and by the message (channel + ts)."""
        body = payload("event_app_mention_basic")
        assert events.dedupe_keys(body) == ["event:Ev111", "msg:C111:1595926230.009600"]


class TestSmallTalk:
    @pytest.mark.parametrize(("text", "kind"), [
        ("hi", "greeting"), ("Hello team!", "greeting"), ("good morning 👋", "greeting"),
        ("thanks, that fixed it", "thanks"), ("ok cool 👍", "thanks"), ("thank you so much", "thanks"),
        ("how long does review take? thanks", None), ("thanks but why was my app rejected", None),
        ("ok", "thanks"), ("", None), ("<@U1>", "empty"), ("fixed", "thanks"),
        ("?", "empty"), ("2", "empty"), ("42?", "empty"), ("...", "empty"), ("👍", "thanks"),
        ("🙏🙏", "thanks"), ("v2?", None), ("3 apps?", None),
        ("thanks bot, that helped", "thanks"),
        ("Hi everyone, hope your week is going well!", "greeting"),
        ("hope you're doing well 🙂", "greeting"), ("happy friday all", "greeting"),
        ("is review going well", None), ("hope my app gets approved this week", None),
        ("thank u so much", "thanks"), ("hope ur week is going well", "greeting"),
    ])
    def test_small_talk(self, text, kind):
        """Only messages made of greeting or thanks words are small talk."""
        assert events.small_talk(text) == kind
