"""How each candidate runs each (case, op), on the same data, and how its result is checked.

Candidates (``CANDIDATES``):
  fastconv        fastconv on NCHW arrays (weights OIHW)
  fastconv_nhwc   fastconv with layout="NHWC" (x NHWC, weights HWIO), the TensorFlow layout
  numpy           fastconv._bench.baselines (im2col + OpenBLAS matmul; strided-window pooling)
  torch           PyTorch CPU on contiguous NCHW tensors
  torch_cl        PyTorch CPU on channels_last tensors (weights too)

Ops: conv ``fwd`` (y = conv2d(x, w)), ``bwd_data`` (dx from dy, w), ``bwd_weight`` (dw from dy, x);
pool ``fwd`` (max pools return indices too, as a training forward must: fastconv
return_indices=True, torch max_pool2d_with_indices, numpy a window-offset cache) and ``bwd``
(dx from dy; max pools route through indices computed once beforehand, the same maxima for
everyone). Gradients call torch's ATen backward ops directly (``convolution_backward`` with one
output mask entry, ``max_pool2d_with_indices_backward``, ...), so no autograd bookkeeping is timed.

Layout conversions happen in ``bind`` (untimed): each candidate gets its inputs in its own layout,
as a caller living in that layout would. ``Bound.result`` maps what the timed call returned back
to NCHW NumPy for the check against the NumPy baseline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import baselines as B
from .runtime import fastconv, torch
from .shapes import CONV_OPS, POOL_OPS, ConvCase, PoolCase

Case = Union[ConvCase, PoolCase]

CANDIDATES = ("fastconv", "fastconv_nhwc", "numpy", "torch", "torch_cl")
FASTCONV_CANDIDATES = ("fastconv", "fastconv_nhwc")
PEERS = ("numpy", "torch", "torch_cl")
RTOL = 1e-4   # float32: max |got - ref| <= RTOL * max |ref|
RTOL_BY_DTYPE = {"float32": RTOL, "float64": 1e-9}
DTYPES = ("float32", "float64")


def available(name: str) -> bool:
    if name in FASTCONV_CANDIDATES:
        return fastconv is not None
    if name in ("torch", "torch_cl"):
        return torch is not None
    return name == "numpy"


def unavailable_reason(name: str) -> Optional[str]:
    if available(name):
        return None
    if name in FASTCONV_CANDIDATES:
        return "fastconv is not importable (build it: pip install --no-build-isolation -e .)"
    if name in ("torch", "torch_cl"):
        return "torch is not installed"
    return f"unknown candidate {name!r}"


def available_candidates(names: Sequence[str] = CANDIDATES) -> List[str]:
    return [n for n in names if available(n)]


def ops_for(case: Case) -> Tuple[str, ...]:
    return CONV_OPS if isinstance(case, ConvCase) else POOL_OPS


# ------------------------------------------------------------------------------------ inputs
def make_inputs(case: Case, seed: int = 0, dtype="float32") -> Dict[str, np.ndarray]:
    """NCHW data (float32 unless ``dtype`` says float64): x, dy (and w for convs), standard
    normal, from one seed."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.name not in DTYPES:
        raise ValueError(f"make_inputs: dtype must be float32 or float64, got {dt.name}")

    def normal(shape, scale=1.0):
        a = rng.standard_normal(shape, dtype=dt.type)
        if scale != 1.0:
            a *= dt.type(scale)
        return a

    if isinstance(case, ConvCase):
        fan_in = (case.C // case.groups) * case.KH * case.KW
        return {"x": normal(case.x_shape), "w": normal(case.w_shape, fan_in ** -0.5),
                "dy": normal(case.y_shape)}
    return {"x": normal(case.x_shape), "dy": normal(case.y_shape)}


def _pool_args(case: PoolCase):
    return case.kernel, case.stride, case.pad


def max_indices(case: PoolCase, inputs: Dict[str, np.ndarray]) -> np.ndarray:
    """int64 plane indices of the maxima (computed once with the baseline, cached in inputs)."""
    if "indices" not in inputs:
        k, s, p = _pool_args(case)
        _, cache = B.max_pool2d_forward(inputs["x"], k, s, p)
        inputs["indices"] = B.max_pool2d_indices(cache)
        inputs["_cache"] = cache  # type: ignore[assignment]
    return inputs["indices"]


# ------------------------------------------------------------------------------------ reference
def reference(case: Case, op: str, inputs: Dict[str, np.ndarray]):
    """The NumPy baseline's result (NCHW; (out, indices) for a max-pool forward)."""
    if isinstance(case, ConvCase):
        kw = case.kwargs()
        x, w, dy = inputs["x"], inputs["w"], inputs["dy"]
        if op == "fwd":
            return B.conv2d_forward(x, w, **kw)
        if op == "bwd_data":
            return B.conv2d_input_grad(dy, w, x.shape, **kw)
        if op == "bwd_weight":
            return B.conv2d_weight_grad(dy, x, w.shape, **kw)
        raise ValueError(f"unknown conv op {op!r}")
    x, dy = inputs["x"], inputs["dy"]
    k, s, p = _pool_args(case)
    if case.kind == "max":
        if op == "fwd":
            out, cache = B.max_pool2d_forward(x, k, s, p)
            return out, B.max_pool2d_indices(cache)
        max_indices(case, inputs)
        return B.max_pool2d_backward(dy, inputs["_cache"])  # type: ignore[arg-type]
    if case.kind == "avg":
        return (B.avg_pool2d_forward(x, k, s, p) if op == "fwd"
                else B.avg_pool2d_backward(dy, x.shape, k, s, p))
    return (B.global_avg_pool2d_forward(x) if op == "fwd"
            else B.global_avg_pool2d_backward(dy, x.shape))


# ------------------------------------------------------------------------------------ binding
@dataclass
class Bound:
    """A candidate ready to run: ``call()`` is what is timed, ``result(ret)`` -> NCHW NumPy."""
    candidate: str
    call: Callable[[], Any]
    result: Callable[[Any], Any]


def _nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _t2n(t) -> np.ndarray:
    return t.contiguous().numpy()


def _bind_conv(case: ConvCase, op: str, cand: str, inp: Dict[str, np.ndarray]) -> Bound:
    kw = case.kwargs()
    x, w, dy = inp["x"], inp["w"], inp["dy"]
    if cand == "numpy":
        if op == "fwd":
            return Bound(cand, lambda: B.conv2d_forward(x, w, **kw), lambda r: r)
        if op == "bwd_data":
            return Bound(cand, lambda: B.conv2d_input_grad(dy, w, x.shape, **kw), lambda r: r)
        return Bound(cand, lambda: B.conv2d_weight_grad(dy, x, w.shape, **kw), lambda r: r)

    if cand == "fastconv":
        fc = fastconv
        if op == "fwd":
            return Bound(cand, lambda: fc.conv2d(x, w, **kw), lambda r: r)
        if op == "bwd_data":
            return Bound(cand, lambda: fc.conv2d_input_grad(dy, w, x.shape, **kw), lambda r: r)
        return Bound(cand, lambda: fc.conv2d_weight_grad(dy, x, w.shape, **kw), lambda r: r)

    if cand == "fastconv_nhwc":
        fc = fastconv
        xn, dyn = _nhwc(x), _nhwc(dy)
        wn = np.ascontiguousarray(w.transpose(2, 3, 1, 0))          # HWIO (KH, KW, C/g, O)
        kwn = dict(kw, layout="NHWC")
        if op == "fwd":
            return Bound(cand, lambda: fc.conv2d(xn, wn, **kwn), _nchw)
        if op == "bwd_data":
            return Bound(cand, lambda: fc.conv2d_input_grad(dyn, wn, xn.shape, **kwn), _nchw)
        return Bound(cand, lambda: fc.conv2d_weight_grad(dyn, xn, wn.shape, **kwn),
                     lambda r: np.ascontiguousarray(r.transpose(3, 2, 0, 1)))

    if cand in ("torch", "torch_cl"):
        T = torch
        xt, wt, dyt = (T.from_numpy(a) for a in (x, w, dy))
        if cand == "torch_cl":
            cl = T.channels_last
            xt, wt, dyt = (t.contiguous(memory_format=cl) for t in (xt, wt, dyt))
        st, pa, di, g = ([case.stride] * 2, [case.pad] * 2, [case.dilation] * 2, case.groups)
        if op == "fwd":
            f = T.nn.functional.conv2d
            return Bound(cand, lambda: f(xt, wt, None, st, pa, di, g), _t2n)
        cb = T.ops.aten.convolution_backward
        mask = [True, False, False] if op == "bwd_data" else [False, True, False]
        idx = 0 if op == "bwd_data" else 1
        return Bound(cand, lambda: cb(dyt, xt, wt, None, st, pa, di, False, [0, 0], g, mask),
                     lambda r: _t2n(r[idx]))
    raise ValueError(f"unknown candidate {cand!r}")


def _bind_pool(case: PoolCase, op: str, cand: str, inp: Dict[str, np.ndarray]) -> Bound:
    x, dy = inp["x"], inp["dy"]
    k, s, p = _pool_args(case)
    kind = case.kind
    idx = max_indices(case, inp) if (kind == "max" and op == "bwd") else None

    if cand == "numpy":
        if kind == "max":
            if op == "fwd":
                return Bound(cand, lambda: B.max_pool2d_forward(x, k, s, p),
                             lambda r: (r[0], B.max_pool2d_indices(r[1])))
            cache = inp["_cache"]
            return Bound(cand, lambda: B.max_pool2d_backward(dy, cache),  # type: ignore
                         lambda r: r)
        if kind == "avg":
            if op == "fwd":
                return Bound(cand, lambda: B.avg_pool2d_forward(x, k, s, p), lambda r: r)
            return Bound(cand, lambda: B.avg_pool2d_backward(dy, x.shape, k, s, p), lambda r: r)
        if op == "fwd":
            return Bound(cand, lambda: B.global_avg_pool2d_forward(x), lambda r: r)
        return Bound(cand, lambda: B.global_avg_pool2d_backward(dy, x.shape), lambda r: r)

    if cand in FASTCONV_CANDIDATES:
        fc = fastconv
        if cand == "fastconv":
            xl, dyl, il, lay, back = x, dy, idx, "NCHW", (lambda a: a)
        else:
            xl, dyl, lay, back = _nhwc(x), _nhwc(dy), "NHWC", _nchw
            il = _nhwc(idx) if idx is not None else None
        shp = xl.shape
        if kind == "max":
            if op == "fwd":
                return Bound(cand, lambda: fc.max_pool2d(xl, k, stride=s, padding=p,
                                                         return_indices=True, layout=lay),
                             lambda r: (back(r[0]), back(r[1])))
            return Bound(cand, lambda: fc.max_pool2d_backward(dyl, il, shp, k, stride=s,
                                                              padding=p, layout=lay), back)
        if kind == "avg":
            if op == "fwd":
                return Bound(cand, lambda: fc.avg_pool2d(xl, k, stride=s, padding=p, layout=lay),
                             back)
            return Bound(cand, lambda: fc.avg_pool2d_backward(dyl, shp, k, stride=s, padding=p,
                                                              layout=lay), back)
        if op == "fwd":
            return Bound(cand, lambda: fc.global_avg_pool2d(xl, layout=lay), back)
        return Bound(cand, lambda: fc.global_avg_pool2d_backward(dyl, shp, layout=lay), back)

    if cand in ("torch", "torch_cl"):
        T = torch
        A = T.ops.aten
        xt, dyt = T.from_numpy(x), T.from_numpy(dy)
        it = T.from_numpy(idx) if idx is not None else None
        if cand == "torch_cl":
            cl = T.channels_last
            xt, dyt = xt.contiguous(memory_format=cl), dyt.contiguous(memory_format=cl)
            it = it.contiguous(memory_format=cl) if it is not None else None
        kk, ss, pp = [k, k], [s, s], [p, p]
        if kind == "max":
            if op == "fwd":
                return Bound(cand, lambda: A.max_pool2d_with_indices(xt, kk, ss, pp, [1, 1], False),
                             lambda r: (_t2n(r[0]), _t2n(r[1])))
            return Bound(cand, lambda: A.max_pool2d_with_indices_backward(
                dyt, xt, kk, ss, pp, [1, 1], False, it), _t2n)
        if kind == "avg":
            if op == "fwd":
                return Bound(cand, lambda: A.avg_pool2d(xt, kk, ss, pp, False, True, None), _t2n)
            return Bound(cand, lambda: A.avg_pool2d_backward(dyt, xt, kk, ss, pp, False, True,
                                                             None), _t2n)
        if op == "fwd":
            f = T.nn.functional.adaptive_avg_pool2d
            return Bound(cand, lambda: f(xt, 1), _t2n)
        return Bound(cand, lambda: A._adaptive_avg_pool2d_backward(dyt, xt), _t2n)
    raise ValueError(f"unknown candidate {cand!r}")


def bind(case: Case, op: str, cand: str, inputs: Dict[str, np.ndarray]) -> Bound:
    """Prepare candidate ``cand`` for (case, op) on ``inputs`` (from make_inputs)."""
    if not available(cand):
        raise RuntimeError(unavailable_reason(cand))
    if op not in ops_for(case):
        raise ValueError(f"{case.name}: unknown op {op!r}; use one of {ops_for(case)}")
    if isinstance(case, ConvCase):
        return _bind_conv(case, op, cand, inputs)
    return _bind_pool(case, op, cand, inputs)


# ------------------------------------------------------------------------------------ algorithm
EXPLAIN_OP = {"fwd": "forward", "bwd_data": "input_grad", "bwd_weight": "weight_grad"}


def explain(case: Case, op: str, cand: str, dtype: str = "float32"
            ) -> Optional[Tuple[str, str]]:
    """(algorithm, one-line reason) fastconv picks for a conv (case, op) in cand's layout, from
    ``fastconv.explain_conv2d`` (None: not a fastconv conv cell, or fastconv has no such
    function). A failing explain_conv2d gives ("?", the error)."""
    if cand not in FASTCONV_CANDIDATES or not isinstance(case, ConvCase) or fastconv is None:
        return None
    fn = getattr(fastconv, "explain_conv2d", None)
    if fn is None or op not in EXPLAIN_OP:
        return None
    nhwc = cand == "fastconv_nhwc"
    n, c, h, w = case.x_shape
    k, cg, kh, kw = case.w_shape
    xs = (n, h, w, c) if nhwc else (n, c, h, w)
    ws = (kh, kw, cg, k) if nhwc else (k, cg, kh, kw)
    try:
        got = fn(xs, ws, stride=case.stride, padding=case.pad, dilation=case.dilation,
                 groups=case.groups, layout="NHWC" if nhwc else "NCHW", dtype=str(dtype),
                 op=EXPLAIN_OP[op])
        name, why = got
        return str(name), str(why)
    except Exception as e:  # noqa: BLE001 - the report works without it
        return "?", f"explain_conv2d failed: {type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------ checking
class MismatchError(AssertionError):
    pass


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref| (computed in float64)."""
    got = np.asarray(got)
    if got.shape != ref.shape:
        raise MismatchError(f"shape {got.shape} != reference shape {ref.shape}")
    if ref.size == 0:
        return 0.0
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
    if not np.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def check(case: Case, op: str, got, ref, inputs: Optional[Dict[str, np.ndarray]] = None,
          rtol: Optional[float] = None) -> float:
    """Raise MismatchError unless ``got`` (Bound.result output) matches the baseline ``ref``.

    Values: max |got - ref| <= rtol * max |ref| (rtol None: RTOL_BY_DTYPE of ref's dtype).
    Max-pool indices must agree exactly, except where the two indices name equal input values
    (a tie, should the orders differ).
    Returns the relative error.
    """
    if rtol is None:
        ref_vals = ref[0] if isinstance(ref, tuple) else ref
        rtol = RTOL_BY_DTYPE.get(np.asarray(ref_vals).dtype.name, RTOL)
    if isinstance(ref, tuple):            # max pool forward: (out, indices)
        err = rel_error(got[0], ref[0])
        gi, ri = np.asarray(got[1]), ref[1]
        if gi.shape != ri.shape:
            raise MismatchError(f"indices shape {gi.shape} != reference {ri.shape}")
        bad = gi.astype(np.int64) != ri
        if bad.any() and inputs is not None:
            n, c = ri.shape[:2]
            planes = inputs["x"].reshape(n, c, -1)
            ok_g = (gi >= 0) & (gi < planes.shape[2])
            safe = np.where(ok_g, gi, 0).astype(np.int64).reshape(n, c, -1)
            vg = np.take_along_axis(planes, safe, 2).reshape(ri.shape)
            vr = np.take_along_axis(planes, ri.reshape(n, c, -1), 2).reshape(ri.shape)
            bad &= ~(ok_g & (vg == vr))
        if bad.any():
            where = tuple(int(i[0]) for i in np.nonzero(bad))
            raise MismatchError(f"{case.name} {op}: {int(bad.sum())} max-pool indices differ "
                                f"(first at {where}: got {int(gi[where])}, "
                                f"reference {int(ri[where])})")
    else:
        err = rel_error(got, ref)
    if not err <= rtol:
        raise MismatchError(f"{case.name} {op}: max|got-ref|/max|ref| = {err:.3g} > {rtol:g}")
    return err
