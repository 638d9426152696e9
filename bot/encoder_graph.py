"""The int8 ONNX graph of all-MiniLM-L6-v2, built from its weights with the ``onnx`` helper API
(no torch); :mod:`bot.encoder` builds it once, caches it and runs it.

The 6 post-LayerNorm BERT layers with ONNX Runtime's fused CPU operators where they are faster
(``MultiHeadAttention``, ``BiasGelu``: exact erf GELU) and every dense layer in int8
(``DynamicQuantizeMatMul``: int8 weights with one scale per output column, activations
quantised to uint8 per call, per tensor; on x86 without VNNI the same weights as uint8
around 128, see :func:`signed_weights`). Three measures keep it close to the float model
(docs/semantic.md): each dense layer's input is divided per channel by a SmoothQuant scale
(``alpha`` 0.6) folded into its weights, calibrated once with the float graph on
:data:`bot.encoder.CALIBRATION`; the [CLS] row, whose activations are the largest, is quantised apart
from the other tokens; and the feed-forward output layer takes its 8 GELU channels with the
largest ranges through a small float product.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

import numpy as np

__all__ = ["build_graph", "signed_weights"]

_ALPHA = 0.6  # SmoothQuant's migration strength: scale = amax(x)**a / amax(w)**(1 - a)
_OUTLIERS = 8  # GELU channels per layer kept out of int8 in the feed-forward output layer


@functools.cache
def signed_weights() -> bool:
    """Whether the int8 weights are signed: yes, unless on an x86 processor without VNNI.

    There ONNX Runtime multiplies uint8 activations by int8 weights with AVX2's
    ``vpmaddubsw``, which adds two products in 16 bits and saturates past 32,767 (255 x 127 x 2
    is 64,770). The same values stored as uint8 around 128 take its uint8 x uint8 kernel, which
    does not saturate (docs/semantic.md).
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True  # Arm's int8 dot products do not saturate
    flags = os.environ.get("FAQBOT_CPU_FLAGS")  # tests
    if flags is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                flags = fh.read(65536)
        except OSError:
            flags = ""
    return bool(set(flags.split()) & {"avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni"})


def build_graph(w: dict[str, Any], ranges: dict[str, np.ndarray] | None) -> tuple[bytes, list[str]]:
    """The serialised ONNX model, and the names of the dense layers' inputs.

    ``ranges`` None: the float graph, which also outputs each dense layer's input (for
    calibration). Else the int8 graph, with those inputs' per-channel absolute maxima.
    """
    from onnx import TensorProto, helper

    b = _Builder(ranges, w["eps"])
    d = w["dim"]
    h = b.node("LayerNormalization", ["embeddings", b.const("emb.ln.w", w["emb_ln"][0]),
                                      b.const("emb.ln.b", w["emb_ln"][1])], "h0", axis=-1, epsilon=w["eps"])
    b.const("split", np.array([d, d, d]), np.int64)
    # [1, length - 1]: how the dense layers split their input's rows (the [CLS] row apart)
    b.node("Shape", ["embeddings"], "shape")
    one, two = b.const("one", np.array([1]), np.int64), b.const("two", np.array([2]), np.int64)
    length = b.node("Slice", ["shape", one, two], "length")
    b.node("Concat", [one, b.node("Sub", [length, one], "others")], "rows", axis=0)
    for i, layer in enumerate(w["layers"]):
        h = b.layer(i, layer, h, d, w["heads"])
    b.node("Identity", [h], "hidden")
    outputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, "length", d])]
    outputs += [helper.make_tensor_value_info(x, TensorProto.FLOAT, None) for x in b.probes]
    graph = helper.make_graph(
        b.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, "length", d])],
        outputs, b.inits)
    model = helper.make_model(graph, producer_name="faqbot", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)])
    model.ir_version = 8
    return model.SerializeToString(), b.probes


_MS = "com.microsoft"  # ONNX Runtime's own operators


class _Builder:
    """The graph's nodes and initialisers as they are added; float, or int8 with ``ranges``."""

    def __init__(self, ranges: dict[str, np.ndarray] | None, eps: float) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.ranges = ranges
        self.eps = eps
        self.signed = signed_weights()
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.probes: list[str] = []

    def const(self, name: str, arr: np.ndarray, dtype: Any = np.float32) -> str:
        self.inits.append(self._numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(self._helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def split(self, x: str, by: str, outputs: list[str], name: str, axis: int) -> None:
        self.nodes.append(self._helper.make_node("Split", [x, by], outputs, name=name, axis=axis))

    def smoothing(self, x: str, weight: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """SmoothQuant's per-channel divisor of the dense layer input ``x`` (``ranges`` given)."""
        amax = np.maximum(self.ranges[x], 1e-5)  # type: ignore[index]
        if keep is not None:
            amax = np.where(keep, amax, 1e-5)
        return amax ** _ALPHA / np.maximum(np.abs(weight).max(axis=1), 1e-5) ** (1 - _ALPHA)

    def dense(self, name: str, x: str, weight: np.ndarray, bias: np.ndarray | None, *,
              keep: np.ndarray | None = None, divided: np.ndarray | None = None) -> str:
        """x @ weight (+ bias): float; or int8, on x divided by its SmoothQuant scale (by a
        Mul here, or already, ``divided``), the scale folded into the weights, and the [CLS]
        row quantised apart."""
        const, node = self.const, self.node
        if self.ranges is None:
            self.probes.append(x)
            y = node("MatMul", [x, const(name + ".w", weight)], name + ".mm")
            return y if bias is None else node("Add", [y, const(name + ".b", bias)], name)
        if divided is None:
            scale = self.smoothing(x, weight, keep)
            inverse = 1.0 / scale if keep is None else np.where(keep, 1.0 / scale, 0.0)
            x = node("Mul", [x, const(name + ".inv", inverse)], name + ".x")
        else:
            scale = divided
        ws = weight * scale[:, None]
        wscale = np.maximum(np.abs(ws).max(axis=0), 1e-12) / 127.0  # per output column
        wq = np.clip(np.rint(ws / wscale), -127, 127)
        if self.signed:
            inputs = [const(name + ".q", wq, np.int8), const(name + ".s", wscale), ""]
        else:  # the same values as uint8 around 128
            inputs = [const(name + ".q", wq + 128, np.uint8), const(name + ".s", wscale),
                      const(name + ".z", np.full(wq.shape[1], 128), np.uint8)]
        if bias is not None:
            inputs.append(const(name + ".b", bias))
        # int8 activations are scaled per tensor: the [CLS] row, the largest by far, apart
        first, rest = name + ".cls.x", name + ".rest.x"
        self.split(x, "rows", [first, rest], name + ".rows", axis=1)
        return node("Concat", [node("DynamicQuantizeMatMul", [first, *inputs], name + ".cls", _MS),
                               node("DynamicQuantizeMatMul", [rest, *inputs], name + ".rest", _MS)],
                    name, axis=1)

    def residual_norm(self, name: str, x: str, bias: np.ndarray, skip: str,
                      norm: tuple[np.ndarray, np.ndarray]) -> str:
        """LayerNorm(x + bias + skip). Add, Add and LayerNormalization: in ONNX Runtime 1.32
        that takes 10% less of a question's time than its fused SkipLayerNormalization."""
        const, node = self.const, self.node
        total = node("Add", [node("Add", [x, const(name + ".b", bias)], name + ".xb"), skip], name + ".sum")
        return node("LayerNormalization", [total, const(name + ".w", norm[0]), const(name + ".nb", norm[1])],
                    name, axis=-1, epsilon=self.eps)

    def layer(self, i: int, layer: dict[str, Any], h: str, d: int, heads: int) -> str:
        """One BERT layer on ``h``: attention, then the feed-forward block; its output's name."""
        const, node, ranges = self.const, self.node, self.ranges
        p = f"l{i}."
        w_qkv, b_qkv = np.concatenate(layer["qkv"][0], axis=1), np.concatenate(layer["qkv"][1])
        divided = None
        if ranges is not None:  # the attention output's divisor, folded into V (exact)
            divided = self.smoothing(p + "att", layer["ao"][0])
            w_qkv[:, 2 * d:] /= divided
            b_qkv[2 * d:] /= divided
        qkv = self.dense(p + "qkv", h, w_qkv, b_qkv)
        self.split(qkv, "split", [p + "q", p + "k", p + "v"], p + "split", axis=-1)
        att = node("MultiHeadAttention", [p + "q", p + "k", p + "v"], p + "att", _MS, num_heads=heads)
        ao = self.dense(p + "ao", att, layer["ao"][0], None, divided=divided)
        h1 = self.residual_norm(p + "h1", ao, layer["ao"][1], h, layer["ln1"])
        inner = self.dense(p + "in", h1, layer["in"][0], None)
        act = node("BiasGelu", [inner, const(p + "in.b", layer["in"][1])], p + "act", _MS)
        w_out = layer["out"][0]
        if ranges is None or not _OUTLIERS:
            out = self.dense(p + "out", act, w_out, None)
        else:  # the channels with the largest ranges in float, the rest in int8
            idx = np.sort(np.argsort(-ranges[act], kind="stable")[:_OUTLIERS])
            keep = np.ones(w_out.shape[0], dtype=bool)
            keep[idx] = False
            picked = node("Gather", [act, const(p + "out.idx", idx, np.int64)], p + "out.o.x", axis=-1)
            in_float = node("MatMul", [picked, const(p + "out.o.w", w_out[idx])], p + "out.o")
            out = node("Add", [self.dense(p + "out.q", act, w_out, None, keep=keep), in_float], p + "out")
        return self.residual_norm(f"h{i + 1}", out, layer["out"][1], h1, layer["ln2"])
