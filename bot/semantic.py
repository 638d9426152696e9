"""The optional semantic signal: the knowledge's entries as sentence embeddings.

The encoder (all-MiniLM-L6-v2 through ONNX Runtime, int8) is :mod:`bot.encoder`; its names are
re-exported here. This module joins it to the knowledge: :func:`attach` embeds every phrasing
and each entry's answer passage (cached beside the compiled knowledge), :class:`EntryVectors`
scores a question against the entries, and :func:`encoder_for` loads the process's one
encoder.

Usage::

    >>> enc = Encoder.load(find_model_dir())
    >>> enc.encode(["how long does app review take"]).shape
    (1, 384)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot import kbcache
from bot.encoder import (
    ENV_VAR,
    PACKAGE,
    WEIGHTS_FILE,
    Encoder,
    SemanticModelError,
    Tokenizer,
    find_model_dir,
    read_safetensors,
)
from bot.normalize import plain_text

if TYPE_CHECKING:
    from bot.matching import Matcher

__all__ = [
    "ENV_VAR", "PACKAGE", "WEIGHTS_FILE", "Closeness", "Encoder", "EntryVectors", "SemanticModelError",
    "Tokenizer", "attach", "encoder_for", "find_model_dir", "read_safetensors", "with_model",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the knowledge side


@dataclass(frozen=True)
class Closeness:
    """How near one question's meaning is to the knowledge (cosines of unit vectors)."""

    entries: np.ndarray  # with each entry's centroid, in the knowledge's order
    phrasings: np.ndarray  # with each entry's nearest phrasing (question included)
    passages: np.ndarray  # with each entry's answer passage (see answer_passage)
    not_covered: int | None  # the nearest of the knowledge's ``not_covered`` questions, if any
    not_covered_cosine: float  # its cosine (-1.0 without any)
    # with each entry's nearest answer sentence, where they are encoded (EntryVectors); else -1
    sentences: np.ndarray | None = None


@dataclass(frozen=True)
class EntryVectors:
    """The knowledge's entries as unit vectors (the mean of each entry's phrasings' vectors,
    question included), each phrasing's own vector, each entry's answer passage, the
    ``not_covered`` questions' vectors, and the encoder that puts a question in the same
    space."""

    encoder: Any  # an Encoder, or anything with encode(texts) -> unit rows
    centroids: np.ndarray  # (entries, dim)
    phrasings: np.ndarray | None = None  # (phrasings, dim), each entry's phrasings together
    starts: np.ndarray | None = None  # the row of each entry's first phrasing
    not_covered: np.ndarray | None = None  # (not_covered questions, dim)
    passages: np.ndarray | None = None  # (entries, dim): each entry's answer passage
    # the mean cosine of each entry's question with its own answer passage: how near this
    # FAQ words its answers to its questions (the blend's scale, matching.blend)
    question_to_answer: float = 1.0
    # the sentences of the entries' answers (see answer_sentences), and the entry each belongs
    # to; only where the blend may decide (_sentences_to_weigh)
    sentences: np.ndarray | None = None
    sentence_owners: np.ndarray | None = None
    # the latest questions' closeness: a Slack retry, `kb eval --sweep` deciding each question
    # once per threshold, a button press on a question just asked
    _recent: OrderedDict[str, Closeness] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cosines(self, text: str) -> np.ndarray:
        """The cosine of ``text`` with each entry, in the knowledge's order."""
        return self.closeness(text).entries

    def closeness(self, text: str) -> Closeness:
        """How near ``text`` is to each entry, to its nearest phrasing, to its answer passage,
        and to the nearest ``not_covered`` question."""
        with self._lock:
            found = self._recent.get(text)
            if found is not None:
                self._recent.move_to_end(text)
                return found
        vector = self.encoder.encode([text])[0]
        entries = self.centroids @ vector
        if self.phrasings is not None and self.starts is not None and len(self.phrasings):
            phrasings = np.maximum.reduceat(self.phrasings @ vector, self.starts)
        else:
            phrasings = entries
        passages = self.passages @ vector if self.passages is not None else phrasings
        nearest, cosine = None, -1.0
        if self.not_covered is not None and len(self.not_covered):
            against = self.not_covered @ vector
            nearest = int(np.argmax(against))
            cosine = float(against[nearest])
        sentences = None
        if self.sentences is not None and self.sentence_owners is not None:
            sentences = np.full(len(entries), -1.0, dtype=np.float32)
            np.maximum.at(sentences, self.sentence_owners, self.sentences @ vector)
        for array in (entries, phrasings, passages, sentences):
            if array is not None:
                array.setflags(write=False)  # shared by every caller that asks the same
        result = Closeness(entries, phrasings, passages, nearest, cosine, sentences)
        with self._lock:
            self._recent[text] = result
            while len(self._recent) > RECENT_QUESTIONS:
                self._recent.popitem(last=False)
        return result


# An entry's answer passage: its question with the opening of its answer, short enough for the
# model to read whole. Most of an FAQ entry's meaning is in its answer (a question alone is
# often terse), and the opening is where an answer says what it is about.
PASSAGE_CHARS = 300


def answer_passage(question: str, answer: str) -> str:
    """The text that stands for an entry's answer in the model's space."""
    return " ".join(f"{question} {' '.join(plain_text(answer).split())[:PASSAGE_CHARS]}".split())


# An answer's sentences end at ".", "?" or "!", at a blank line, or where a list item starts (its
# marker dropped); a single line break inside a sentence (text wrapped by hand) does not end it.
_ANSWER_SENTENCE = re.compile(r"\n\s*(?:[-*•]|\d+[.)])\s+|(?<=[.?!])\s+|\n\s*\n")


def answer_sentences(answer: str) -> list[str]:
    """The sentences of an answer that say something (three words or more), as plain text."""
    sentences = (" ".join(s.split()) for s in _ANSWER_SENTENCE.split(plain_text(answer)))
    return [s for s in sentences if len(s.split()) >= 3]


def _sentences_to_weigh(kb: Matcher) -> tuple[list[str], list[int]]:
    """The sentences of every entry's answer, and each one's entry, where the calibrated blend
    may decide (knowledge without ``thresholds:``, or with entries with few phrasings); else
    none, and nothing is encoded.

    The blend reads an entry's answer through its passage (the opening), and a question about
    one point of a long answer through the sentence that makes it (matching.blend). Against
    the knowledge's ``not_covered`` questions an entry with few phrasings is as near as its
    nearest sentence too: a short question reads nearer another short question than a
    passage."""
    if kb.thresholds.tuned and not kb.index.thin:
        return [], []
    texts: list[str] = []
    owners: list[int] = []
    for n, entry in enumerate(kb.entries):
        found = answer_sentences(entry.answer)
        texts.extend(found)
        owners.extend([n] * len(found))
    return texts, owners


def with_model(kb: Matcher, setting: str) -> Matcher:
    """``kb`` with the model ``FAQBOT_SEMANTIC`` (``setting``) names; ``kb`` itself when
    there is none (``off``, or ``auto`` with no model installed)."""
    return attach(kb, encoder_for(setting))


def attach(kb: Matcher, encoder: Any) -> Matcher:
    """``kb`` with its entries' vectors, for ``matching.decide`` to use (a copy sharing the
    index; ``kb`` is unchanged). Without an encoder, ``kb`` itself."""
    if encoder is None:
        return kb
    texts: list[str] = []
    owners: list[int] = []
    for n, entry in enumerate(kb.entries):
        for phrasing in entry.all_phrasings:
            texts.append(" ".join(phrasing.split()))
            owners.append(n)
    passages = [answer_passage(entry.question, entry.answer) for entry in kb.entries]
    beyond = [" ".join(q.split()) for q in kb.not_covered]
    sentences, sentence_owners = _sentences_to_weigh(kb)
    # Encoding every phrasing and passage takes seconds: the result is cached beside the
    # compiled knowledge, keyed by the model's files, this code and the texts encoded.
    fingerprint = getattr(encoder, "fingerprint", None)
    key = None
    if fingerprint is not None:
        digest = hashlib.sha256(fingerprint.encode())
        digest.update(_source_digest())
        for n, text in zip(owners, texts, strict=True):
            digest.update(f"{n}\0{text}\0".encode())
        for text in passages:
            digest.update(f"+\0{text}\0".encode())
        for text in beyond:
            digest.update(f"-\0{text}\0".encode())
        for n, text in zip(sentence_owners, sentences, strict=True):
            digest.update(f".{n}\0{text}\0".encode())
        key = "vectors-" + digest.hexdigest()
    # one matrix on disk: the entries' centroids, the phrasings, the passages, `not_covered`,
    # the answer sentences
    entries = len(kb.entries)
    rows = entries + len(texts) + len(passages) + len(beyond) + len(sentences)
    stored = kbcache.load_vectors(key) if key else None
    if stored is None or stored.shape[0] != rows:
        vectors = np.asarray(encoder.encode(texts + passages + beyond + sentences), dtype=np.float32)
        phrasings = vectors[: len(texts)]
        sums = np.zeros((entries, vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, np.asarray(owners, dtype=np.intp), phrasings)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = (sums / np.where(norms == 0, 1, norms)).astype(np.float32)
        stored = np.concatenate([centroids, vectors])
        if key:
            kbcache.store_vectors(key, stored)
    at = entries + len(texts)
    after = at + len(passages) + len(beyond)  # the first answer sentence
    return replace(kb, vectors=EntryVectors(
        encoder,
        centroids=stored[:entries],
        phrasings=stored[entries:at],
        starts=kb.index.entry_start,  # the index lists the phrasings in the same order
        not_covered=stored[at + len(passages): after] if beyond else None,
        passages=stored[at: at + len(passages)],
        question_to_answer=float(np.mean(np.einsum(
            "ij,ij->i", stored[entries:at][kb.index.entry_start],
            stored[at: at + len(passages)]))) if entries else 1.0,
        sentences=stored[after:] if sentences else None,
        sentence_owners=np.asarray(sentence_owners, dtype=np.intp) if sentences else None,
    ))


@functools.cache
def _source_digest() -> bytes:
    """A hash of this module's source: the code that computes the cached entry vectors."""
    return hashlib.sha256(Path(__file__).read_bytes()).digest()


RECENT_QUESTIONS = 2048  # questions whose cosines each knowledge version keeps
_ENCODERS: dict[str, Encoder | None] = {}
_ENCODERS_LOCK = threading.Lock()


def encoder_for(setting: str) -> Encoder | None:
    """The process's encoder for ``FAQBOT_SEMANTIC`` (``auto``: the installed model if any;
    ``off``: none; else a model folder), loaded once and shared by every knowledge version
    (and, loaded before gunicorn forks, by every worker).

    Raises:
        SemanticModelError: a model folder was named and cannot be loaded (with ``auto``, a
            broken install is logged and the answer is None: the lexical matcher alone).
    """
    setting = setting.strip() or "auto"
    if setting.lower() == "off":
        return None
    with _ENCODERS_LOCK:
        if setting not in _ENCODERS:
            try:
                folder = find_model_dir(setting)
                _ENCODERS[setting] = Encoder.load(folder) if folder is not None else None
            except SemanticModelError as exc:
                if setting.lower() != "auto":
                    raise
                # found by itself, the model is a bonus: a broken install must not stop the bot
                log.warning("semantic model not used: %s", exc)
                _ENCODERS[setting] = None
            else:
                if folder is not None:
                    log.info("semantic model loaded from %s", folder)
        return _ENCODERS[setting]
