"""The compiled-knowledge cache: a validated, ready-to-match knowledge base kept on disk.

Parsing and validating a large knowledge file and building its matching index takes seconds;
unpickling the result takes a fraction of that. Like Python's ``__pycache__``, after a
successful load ``bot.knowledge`` stores the compiled knowledge (:class:`~bot.matching.Matcher`:
the knowledge and its built ``index``) here, and a later load of the same bytes takes it from
here instead.

* Folder: ``$XDG_CACHE_HOME/faqbot`` (default ``~/.cache/faqbot``), created with mode 0700 and
  used only while it is the current user's and closed to others (a cache file is a pickle).
* Key: SHA-256 of the file's bytes, with the code version (a hash of the source of
  ``bot/knowledge.py``, ``bot/matching/``, ``bot/normalize.py`` and this module, so an edit
  of the code that shapes the knowledge base misses) and the Python and library versions.
* Writes are atomic (a temporary file, then ``os.replace``); only the 8 most recently used
  files are kept.
* Only valid knowledge is stored: a broken file is always parsed, and its problems always
  come from the parse, with their lines.
* Nothing here is ever an error for the user: a missing, corrupt, truncated or unreadable
  cache file, or a folder that cannot be written, only means a normal parse (logged at DEBUG).
* ``FAQBOT_KNOWLEDGE_CACHE=0`` (or ``false``, ``no``, ``off``) turns the cache off.
* The same folder, header, checks and pruning keep the semantic model's entry vectors
  (``*.vec``, :func:`store_vectors`) and its ONNX graph (``encoder-*.onnx``, 11 MB,
  :func:`store_bytes`; ``bot.encoder`` builds it again when it is missing).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import logging
import os
import pickle
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from bot.gcpause import collector_paused

if TYPE_CHECKING:
    from bot.matching import Matcher

__all__ = [
    "KEEP", "cache_dir", "enabled", "key", "load", "load_bytes", "load_vectors", "store", "store_bytes",
    "store_vectors",
]

T = TypeVar("T")

logger = logging.getLogger("faqbot.kbcache")

KEEP = 8  # cache files kept (the most recently used)
ENV = "FAQBOT_KNOWLEDGE_CACHE"
_MAGIC = b"faqbot-kb\n"
_SUFFIX = ".kb"
_VECTORS_SUFFIX = ".vec"
_BYTES_SUFFIXES = (".onnx",)  # other files kept here (bot.encoder's graph)
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600  # a temporary file this old was left by a writer that died
# Code whose change alters the knowledge base or its index (the format version).
_SOURCES = ("knowledge.py", "matching", "normalize.py", "kbcache.py")
_LIBRARIES = ("yaml", "snowballstemmer", "rapidfuzz", "numpy")  # parse, stem, or are pickled
_OFF = frozenset({"0", "false", "no", "off"})


def enabled() -> bool:
    """False when ``FAQBOT_KNOWLEDGE_CACHE`` turns the cache off."""
    return os.environ.get(ENV, "").strip().lower() not in _OFF


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/faqbot`` (or ``~/.cache/faqbot``); None when there is no home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):  # the XDG spec ignores a relative path
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError, OSError):
            return None
    return Path(base) / "faqbot"


@functools.cache
def _code_version() -> str:
    """A hash of the code and versions that shape a pickled knowledge base."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(str(pickle.HIGHEST_PROTOCOL).encode())
    for module in _LIBRARIES:
        try:
            version = getattr(importlib.import_module(module), "__version__", None)
        except ImportError:
            version = None
        h.update(f"{module}={version};".encode())
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        for path in sorted((here / name).glob("*.py")) if (here / name).is_dir() else [here / name]:
            h.update(str(path.relative_to(here)).encode())
            h.update(path.read_bytes())  # OSError: no cache (see key)
    return h.hexdigest()


def key(data: bytes) -> str | None:
    """The cache key of a knowledge file's bytes; None when the cache is off or unusable."""
    if not enabled():
        return None
    try:
        version = _code_version()
    except OSError as exc:
        logger.debug("knowledge cache off: cannot read faqbot's source: %s", exc)
        return None
    return hashlib.sha256(version.encode() + hashlib.sha256(data).digest()).hexdigest()


def _usable_dir(create: bool) -> Path | None:
    """The cache folder when it is ours and closed to others (made 0700 when ``create``)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    if hasattr(os, "getuid"):
        if st.st_uid != os.getuid():
            logger.debug("knowledge cache off: %s belongs to another user", folder)
            return None
        if st.st_mode & 0o077:
            try:
                os.chmod(folder, 0o700)
            except OSError:
                logger.debug("knowledge cache off: %s is open to other users", folder)
                return None
    return folder


def load(cache_key: str, kind: type[T]) -> T | None:
    """The compiled knowledge (a ``kind``, the caller's class: this module imports no
    knowledge code) stored under ``cache_key``; None on a miss."""
    found = _read(cache_key, _SUFFIX)
    if found is None:
        return None
    file, payload = found
    try:
        with collector_paused():  # unpickling allocates many objects
            kb = pickle.loads(payload)
    except Exception as exc:  # any failure of a cache is a miss, never an error
        logger.debug("knowledge cache: cannot unpickle %s: %s", file, exc)
        return None
    if not isinstance(kb, kind):
        logger.debug("knowledge cache: ignoring %s (not compiled knowledge)", file)
        return None
    logger.debug("knowledge cache: %s", file)
    return kb


def load_vectors(cache_key: str) -> np.ndarray | None:
    """The float32 matrix stored under ``cache_key`` (the semantic model's entry vectors,
    ``bot.semantic.attach``); None on a miss."""
    found = _read(cache_key, _VECTORS_SUFFIX)
    if found is None:
        return None
    file, payload = found
    try:
        vectors = np.load(io.BytesIO(payload), allow_pickle=False)
    except Exception as exc:  # any failure of a cache is a miss, never an error
        logger.debug("knowledge cache: cannot read vectors from %s: %s", file, exc)
        return None
    return vectors if vectors.dtype == np.float32 and vectors.ndim == 2 else None


def load_bytes(cache_key: str, suffix: str) -> memoryview | None:
    """The verified bytes stored under ``cache_key`` with ``suffix`` (one of
    ``_BYTES_SUFFIXES``: the semantic model's graph, ``bot.encoder``); None on a miss."""
    found = _read(cache_key, suffix)
    return None if found is None else found[1]


def _read(cache_key: str, suffix: str) -> tuple[Path, memoryview] | None:
    """The verified payload of the cache file for ``cache_key``; None on a miss."""
    if not enabled():
        return None
    folder = _usable_dir(create=False)
    if folder is None:
        return None
    file = folder / (cache_key + suffix)
    try:
        with open(file, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.debug("knowledge cache: cannot read %s: %s", file, exc)
        return None
    header = _MAGIC + cache_key.encode() + b"\n"
    digest_end = len(header) + 32
    if (
        not blob.startswith(header)
        or hashlib.sha256(memoryview(blob)[digest_end:]).digest() != blob[len(header):digest_end]
    ):
        logger.debug("knowledge cache: ignoring %s (corrupt or truncated)", file)
        return None
    with contextlib.suppress(OSError):
        os.utime(file)  # most recently used: pruned last
    return file, memoryview(blob)[digest_end:]


def store(cache_key: str, kb: Matcher) -> None:
    """Keep ``kb`` (just loaded, not yet used) under ``cache_key``; failures are ignored."""
    try:
        payload = pickle.dumps(kb, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # unpicklable: just no cache
        logger.debug("knowledge cache: cannot store %s: %s", kb.path, exc)
        return
    _write(cache_key, _SUFFIX, payload)


def store_vectors(cache_key: str, vectors: np.ndarray) -> None:
    """Keep a float32 matrix under ``cache_key``; failures are ignored."""
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    _write(cache_key, _VECTORS_SUFFIX, out.getvalue())


def store_bytes(cache_key: str, suffix: str, payload: bytes) -> None:
    """Keep ``payload`` under ``cache_key`` with ``suffix`` (see :func:`load_bytes`); failures
    are ignored."""
    if suffix not in _BYTES_SUFFIXES:
        raise ValueError(f"not a cache suffix for bytes: {suffix!r}")
    _write(cache_key, suffix, payload)


def _write(cache_key: str, suffix: str, payload: bytes) -> None:
    """Write the cache file for ``cache_key`` atomically, then prune; failures are ignored."""
    if not enabled():
        return
    folder = _usable_dir(create=True)
    if folder is None:
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TMP_PREFIX, suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + cache_key.encode() + b"\n")
            fh.write(hashlib.sha256(payload).digest())
            fh.write(payload)
        os.replace(tmp, folder / (cache_key + suffix))
        tmp = None
    except Exception as exc:  # disk full, read-only: just no cache
        logger.debug("knowledge cache: cannot store %s in %s: %s", cache_key, folder, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _prune(folder)


def _prune(folder: Path) -> None:
    """Delete all but the ``KEEP`` most recently used files, and stale temporary files."""
    try:
        found = []
        with os.scandir(folder) as it:
            for item in it:
                if not item.name.endswith((_SUFFIX, _VECTORS_SUFFIX, *_BYTES_SUFFIXES)):
                    continue
                with contextlib.suppress(OSError):
                    found.append((item.stat().st_mtime, item.name))
    except OSError:
        return
    now = time.time()
    files = sorted(((m, n) for m, n in found if not n.startswith(_TMP_PREFIX)), reverse=True)
    doomed = [n for _, n in files[KEEP:]]
    doomed += [n for m, n in found if n.startswith(_TMP_PREFIX) and now - m > _STALE_TMP_S]
    for name in doomed:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
