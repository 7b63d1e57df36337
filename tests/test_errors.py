"""BAD_INPUTS.md items 1-18: every malformed input raises the SPEC exception (TypeError /
ValueError / OverflowError) with a message naming the function and the argument; valid edge
inputs (items 3, 8, 13-15, 17) give the PyTorch / reference answer.

Crash safety: every bad call in CASES is first run in a child interpreter (``test_no_crash``,
restarted past any case that kills it), so a segfault is reported as a failing case id instead
of taking the test session down; in-process checks of a case that crashed the child fail
without running it.
"""
import functools
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastconv
import reference as R
from conftest import LAYOUTS, assert_close, assert_same, int_data, seeded_rng

HUGE = [2**31, 2**31 - 1, 1879048192, 2**63 - 1, 2**64]
SIZE_ERRORS = (ValueError, OverflowError, MemoryError)

# ------------------------------------------------------------------------------------------------
# fixed operands (float32): conv x (2,4,6,6) * w (3,4,3,3) -> (2,3,4,4)
# ------------------------------------------------------------------------------------------------
X = np.ones((2, 4, 6, 6), np.float32)
W = np.ones((3, 4, 3, 3), np.float32)
B = np.ones(3, np.float32)
GO = np.ones((2, 3, 4, 4), np.float32)
XT = np.ones((2, 3, 4, 4), np.float32)        # conv_transpose2d x; weight (3, 2, 3, 3)
WT = np.ones((3, 2, 3, 3), np.float32)
GOT = np.ones((2, 2, 6, 6), np.float32)       # its output
XP = np.ones((2, 3, 8, 8), np.float32)        # pools, kernel 2 -> (2, 3, 4, 4)
GOP = np.ones((2, 3, 4, 4), np.float32)
IDXP = np.zeros((2, 3, 4, 4), np.int64)       # valid indices: top-left of each 2x2 window
for _i in range(4):
    for _j in range(4):
        IDXP[:, :, _i, _j] = (2 * _i) * 8 + 2 * _j
GOA = np.ones((2, 3, 3, 3), np.float32)       # adaptive 3x3 output of XP
IDXA = R.adaptive_max_pool2d(XP, 3)[1]       # valid adaptive indices (reference)


class Case:
    """One bad call: fn() must raise `exc` with a message matching every regex in `words`."""

    def __init__(self, cid, fname, fn, exc, *words):
        self.id, self.fname, self.fn, self.exc, self.words = cid, fname, fn, exc, words


CASES = []


def case(cid, fname, fn, exc, *words):
    CASES.append(Case(cid, fname, fn, exc, *words))


ARG = lambda name: r"\b" + re.escape(name) + r"\b"

# conv-family callers taking keyword overrides
CONV_FNS = {
    "conv2d": lambda **k: fastconv.conv2d(X, W, B, **k),
    "conv2d_backward": lambda **k: fastconv.conv2d_backward(GO, X, W, **k),
    "conv2d_input_grad": lambda **k: fastconv.conv2d_input_grad(GO, W, X.shape, **k),
    "conv2d_weight_grad": lambda **k: fastconv.conv2d_weight_grad(GO, X, W.shape, **k),
    "conv_transpose2d": lambda **k: fastconv.conv_transpose2d(XT, WT, **k),
    "conv_transpose2d_backward": lambda **k: fastconv.conv_transpose2d_backward(GOT, XT, WT, **k),
}
POOL_FNS = {  # kernel_size passed by the caller
    "max_pool2d": lambda k, **kw: fastconv.max_pool2d(XP, k, **kw),
    "max_pool2d_backward": lambda k, **kw: fastconv.max_pool2d_backward(GOP, IDXP, XP.shape, k,
                                                                        **kw),
    "avg_pool2d": lambda k, **kw: fastconv.avg_pool2d(XP, k, **kw),
    "avg_pool2d_backward": lambda k, **kw: fastconv.avg_pool2d_backward(GOP, XP.shape, k, **kw),
}


def _with(f, *a, **k):
    return lambda: f(*a, **k)


# --- 1. not an array; wrong ndim ------------------------------------------------------------------
for bad_name, bad in [("list", X.tolist()), ("None", None), ("scalar", 3.0)]:
    case(f"1-conv2d-x-{bad_name}", "conv2d", _with(fastconv.conv2d, bad, W), TypeError, ARG("x"))
    case(f"1-conv2d-weight-{bad_name}", "conv2d", _with(fastconv.conv2d, X, bad), TypeError,
         ARG("weight"))
    case(f"1-max_pool2d-x-{bad_name}", "max_pool2d", _with(fastconv.max_pool2d, bad, 2),
         TypeError, ARG("x"))
    case(f"1-avg_pool2d-x-{bad_name}", "avg_pool2d", _with(fastconv.avg_pool2d, bad, 2),
         TypeError, ARG("x"))
    case(f"1-conv2d_backward-grad_out-{bad_name}", "conv2d_backward",
         _with(fastconv.conv2d_backward, bad, X, W), TypeError, ARG("grad_out"))
    case(f"1-conv_transpose2d-x-{bad_name}", "conv_transpose2d",
         _with(fastconv.conv_transpose2d, bad, WT), TypeError, ARG("x"))
    case(f"1-adaptive_avg_pool2d-x-{bad_name}", "adaptive_avg_pool2d",
         _with(fastconv.adaptive_avg_pool2d, bad, 2), TypeError, ARG("x"))
    case(f"1-global_avg_pool2d-x-{bad_name}", "global_avg_pool2d",
         _with(fastconv.global_avg_pool2d, bad), TypeError, ARG("x"))
case("1-conv2d-bias-list", "conv2d", _with(fastconv.conv2d, X, W, [1.0, 2.0, 3.0]), TypeError,
     ARG("bias"))
case("1-max_pool2d_backward-indices-list", "max_pool2d_backward",
     _with(fastconv.max_pool2d_backward, GOP, IDXP.tolist(), XP.shape, 2), TypeError,
     ARG("indices"))
NDIM = r"(?i)ndim|dimension|\d-?D\b"
for nd in (0, 1, 2, 5):
    xa = np.ones((2,) * nd, np.float32)
    case(f"1-conv2d-x-{nd}d", "conv2d", _with(fastconv.conv2d, xa, W), ValueError, ARG("x"), NDIM)
    case(f"1-conv2d-weight-{nd}d", "conv2d", _with(fastconv.conv2d, X, xa), ValueError,
         ARG("weight"), NDIM)
    case(f"1-max_pool2d-x-{nd}d", "max_pool2d", _with(fastconv.max_pool2d, xa, 1), ValueError,
         ARG("x"), NDIM)
    case(f"1-avg_pool2d-x-{nd}d", "avg_pool2d", _with(fastconv.avg_pool2d, xa, 1), ValueError,
         ARG("x"), NDIM)
    case(f"1-adaptive_max_pool2d-x-{nd}d", "adaptive_max_pool2d",
         _with(fastconv.adaptive_max_pool2d, xa, 1), ValueError, ARG("x"), NDIM)
    case(f"1-conv_transpose2d-x-{nd}d", "conv_transpose2d",
         _with(fastconv.conv_transpose2d, xa, WT), ValueError, ARG("x"), NDIM)
case("1-conv2d-bias-2d", "conv2d", _with(fastconv.conv2d, X, W, B[None]), ValueError,
     ARG("bias"))

# --- 2. dtypes ----------------------------------------------------------------------------------
for dt in (np.int32, np.int64, np.bool_, np.complex64, np.complex128, object, np.float16,
           np.uint8):
    name = np.dtype(dt).name
    case(f"2-conv2d-x-{name}", "conv2d", _with(fastconv.conv2d, X.astype(dt), W), TypeError,
         ARG("x"))
    case(f"2-conv2d-weight-{name}", "conv2d", _with(fastconv.conv2d, X, W.astype(dt)), TypeError,
         ARG("weight"))
    case(f"2-max_pool2d-x-{name}", "max_pool2d", _with(fastconv.max_pool2d, XP.astype(dt), 2),
         TypeError, ARG("x"))
    case(f"2-avg_pool2d-x-{name}", "avg_pool2d", _with(fastconv.avg_pool2d, XP.astype(dt), 2),
         TypeError, ARG("x"))
    case(f"2-global_avg_pool2d-x-{name}", "global_avg_pool2d",
         _with(fastconv.global_avg_pool2d, XP.astype(dt)), TypeError, ARG("x"))
    case(f"2-conv2d_backward-grad_out-{name}", "conv2d_backward",
         _with(fastconv.conv2d_backward, GO.astype(dt), X, W), TypeError, ARG("grad_out"))
X64, W64, B64 = X.astype(np.float64), W.astype(np.float64), B.astype(np.float64)
case("2-conv2d-mixed-weight", "conv2d", _with(fastconv.conv2d, X, W64), TypeError,
     ARG("weight"))
case("2-conv2d-mixed-x", "conv2d", _with(fastconv.conv2d, X64, W), TypeError, ARG("weight"))
case("2-conv2d-mixed-bias", "conv2d", _with(fastconv.conv2d, X, W, B64), TypeError, ARG("bias"))
case("2-conv2d_backward-mixed-grad_out", "conv2d_backward",
     _with(fastconv.conv2d_backward, GO.astype(np.float64), X, W), TypeError, ARG("grad_out"))
case("2-conv2d_backward-mixed-weight", "conv2d_backward",
     _with(fastconv.conv2d_backward, GO, X, W64), TypeError, ARG("weight"))
case("2-conv_transpose2d-mixed", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, WT.astype(np.float64)), TypeError, ARG("weight"))
case("2-max_pool2d_backward-grad_out-float16", "max_pool2d_backward",
     _with(fastconv.max_pool2d_backward, GOP.astype(np.float16), IDXP, XP.shape, 2), TypeError,
     ARG("grad_out"))
case("2-avg_pool2d_backward-int", "avg_pool2d_backward",
     _with(fastconv.avg_pool2d_backward, GOP.astype(np.int32), XP.shape, 2), TypeError,
     ARG("grad_out"))

# --- 4. out= ------------------------------------------------------------------------------------
OUT_OK = np.zeros((2, 3, 4, 4), np.float32)
_ro = np.zeros((2, 3, 4, 4), np.float32)
_ro.setflags(write=False)
OUT_CASES = [
    ("wrong-shape", lambda: np.zeros((2, 3, 4, 5), np.float32), ValueError),
    ("wrong-ndim", lambda: np.zeros((2, 3, 16), np.float32), ValueError),
    ("wrong-dtype", lambda: np.zeros((2, 3, 4, 4), np.float64), TypeError),
    ("read-only", lambda: _ro, ValueError),
    ("list", lambda: OUT_OK.tolist(), TypeError),
]
for oid, mk, exc in OUT_CASES:
    case(f"4-conv2d-out-{oid}", "conv2d",
         (lambda mk=mk: fastconv.conv2d(X, W, B, out=mk())), exc, ARG("out"))

# --- 5. conv parameters -------------------------------------------------------------------------
for fname, f in CONV_FNS.items():
    bad = [("stride", 0), ("stride", -1), ("stride", (1, 0)), ("dilation", 0),
           ("dilation", (0, 1)), ("groups", 0), ("groups", -1), ("padding", -1),
           ("padding", (0, -1)), ("padding", "bogus"), ("layout", "NWHC"), ("layout", "")]
    if "transpose" not in fname:
        bad.append(("padding", ((0, -1), (0, 0))))
    for arg, val in bad:
        case(f"5-{fname}-{arg}={val!r}", fname, (lambda f=f, arg=arg, val=val: f(**{arg: val})),
             ValueError, ARG(arg))
    case(f"5-{fname}-layout-int", fname, (lambda f=f: f(layout=1)), (TypeError, ValueError),
         ARG("layout"))

# --- 6. channels / groups / bias ----------------------------------------------------------------
X5 = np.ones((1, 5, 6, 6), np.float32)
case("6-conv2d-C-not-divisible", "conv2d",
     _with(fastconv.conv2d, X5, np.ones((4, 2, 3, 3), np.float32), groups=2), ValueError,
     ARG("groups"))
case("6-conv2d-weight-channels", "conv2d",
     _with(fastconv.conv2d, X, np.ones((3, 3, 3, 3), np.float32)), ValueError, ARG("weight"))
case("6-conv2d-weight-channels-groups", "conv2d",
     _with(fastconv.conv2d, X, np.ones((4, 4, 3, 3), np.float32), groups=2), ValueError,
     ARG("weight"))
case("6-conv2d-O-not-divisible", "conv2d",
     _with(fastconv.conv2d, X, np.ones((3, 2, 3, 3), np.float32), groups=2), ValueError,
     ARG("groups"))
case("6-conv2d-bias-length", "conv2d", _with(fastconv.conv2d, X, W, np.ones(4, np.float32)),
     ValueError, ARG("bias"))
case("6-conv2d-bias-0d", "conv2d", _with(fastconv.conv2d, X, W, np.ones((), np.float32)),
     ValueError, ARG("bias"))
case("6-conv2d-NHWC-weight-channels", "conv2d",
     _with(fastconv.conv2d, np.ones((1, 6, 6, 4), np.float32), np.ones((3, 3, 3, 5), np.float32),
           layout="NHWC"), ValueError, ARG("weight"))
case("6-conv2d_backward-weight-channels", "conv2d_backward",
     _with(fastconv.conv2d_backward, GO, X, np.ones((3, 3, 3, 3), np.float32)), ValueError,
     ARG("weight"))
case("6-conv_transpose2d-weight-channels", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, np.ones((4, 2, 3, 3), np.float32)), ValueError,
     ARG("weight"))
case("6-conv_transpose2d-C-not-divisible", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, WT, groups=2), ValueError, ARG("groups"))
case("6-conv_transpose2d-bias-length", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, WT, np.ones(3, np.float32)), ValueError, ARG("bias"))

# --- 7. kernel larger than padded input; empty plane ---------------------------------------------
KERNEL = r"weight|kernel"
case("7-conv2d-kernel-too-large", "conv2d",
     _with(fastconv.conv2d, X, np.ones((3, 4, 7, 7), np.float32)), ValueError, KERNEL)
case("7-conv2d-dilated-kernel-too-large", "conv2d",
     _with(fastconv.conv2d, X, W, dilation=3), ValueError, r"dilation|weight|kernel")
case("7-conv2d-kernel-too-large-NHWC", "conv2d",
     _with(fastconv.conv2d, np.ones((1, 3, 8, 4), np.float32),
           np.ones((4, 4, 4, 2), np.float32), layout="NHWC"), ValueError, KERNEL)
case("7-conv2d-H0", "conv2d", _with(fastconv.conv2d, np.ones((1, 4, 0, 6), np.float32), W),
     ValueError, ARG("x"))
case("7-conv2d-W0-padded", "conv2d",
     _with(fastconv.conv2d, np.ones((1, 4, 6, 0), np.float32), W, padding=2), ValueError,
     ARG("x"))
case("7-conv_transpose2d-H0", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, np.ones((1, 3, 0, 4), np.float32), WT), ValueError,
     ARG("x"))
case("7-max_pool2d-H0", "max_pool2d", _with(fastconv.max_pool2d, np.ones((1, 3, 0, 4),
                                                                         np.float32), 1),
     ValueError, ARG("x"))
case("7-avg_pool2d-W0", "avg_pool2d", _with(fastconv.avg_pool2d, np.ones((1, 3, 4, 0),
                                                                         np.float32), 1),
     ValueError, ARG("x"))
case("7-adaptive_avg_pool2d-H0", "adaptive_avg_pool2d",
     _with(fastconv.adaptive_avg_pool2d, np.ones((1, 3, 0, 4), np.float32), 2), ValueError,
     ARG("x"))
case("7-global_avg_pool2d-H0", "global_avg_pool2d",
     _with(fastconv.global_avg_pool2d, np.ones((1, 3, 0, 4), np.float32)), ValueError, ARG("x"))
case("7-conv_transpose2d-output-too-small", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, np.ones((1, 3, 1, 1), np.float32), WT, padding=2),
     ValueError, r"padding|output")

# --- 8. zero-sized kernel -----------------------------------------------------------------------
case("8-conv2d-KH0", "conv2d", _with(fastconv.conv2d, X, np.ones((3, 4, 0, 3), np.float32)),
     ValueError, KERNEL)
case("8-conv2d-KW0", "conv2d", _with(fastconv.conv2d, X, np.ones((3, 4, 3, 0), np.float32)),
     ValueError, KERNEL)
case("8-conv2d-K0-NHWC", "conv2d",
     _with(fastconv.conv2d, np.ones((1, 6, 6, 4), np.float32), np.ones((0, 3, 4, 3), np.float32),
           layout="NHWC"), ValueError, KERNEL)
case("8-conv_transpose2d-K0", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, np.ones((3, 2, 0, 3), np.float32)), ValueError, KERNEL)
case("8-conv2d_backward-K0", "conv2d_backward",
     _with(fastconv.conv2d_backward, GO, X, np.ones((3, 4, 0, 3), np.float32)), ValueError,
     KERNEL)

# --- 9. huge parameters (values that cannot be valid) ---------------------------------------------
# Where a huge value makes a derived size overflow, a message naming that size (output / grad_x,
# with the offending shape) is accepted as naming the argument.
PAD_OR_OUT = r"\bpad|\boutput\b"
for v in HUGE:
    case(f"9-conv2d-padding={v}", "conv2d", _with(fastconv.conv2d, X, W, padding=v), SIZE_ERRORS,
         PAD_OR_OUT)
    case(f"9-conv2d-padding-pair={v}", "conv2d", _with(fastconv.conv2d, X, W, padding=(0, v)),
         SIZE_ERRORS, PAD_OR_OUT)
    case(f"9-conv2d-padding-sides={v}", "conv2d",
         _with(fastconv.conv2d, X, W, padding=((v, 0), (0, 0))), SIZE_ERRORS, PAD_OR_OUT)
    case(f"9-conv2d-dilation={v}", "conv2d", _with(fastconv.conv2d, X, W, dilation=v),
         SIZE_ERRORS, ARG("dilation"))
    case(f"9-conv2d-groups={v}", "conv2d", _with(fastconv.conv2d, X, W, groups=v), SIZE_ERRORS,
         ARG("groups"))
    case(f"9-conv2d_backward-padding={v}", "conv2d_backward",
         _with(fastconv.conv2d_backward, GO, X, W, padding=v), SIZE_ERRORS, PAD_OR_OUT)
    case(f"9-conv_transpose2d-output_padding={v}", "conv_transpose2d",
         _with(fastconv.conv_transpose2d, XT, WT, output_padding=v), SIZE_ERRORS,
         ARG("output_padding"))
    case(f"9-conv_transpose2d-dilation={v}", "conv_transpose2d",
         _with(fastconv.conv_transpose2d, XT, WT, dilation=v), SIZE_ERRORS,
         r"dilation|output")
    case(f"9-max_pool2d-kernel_size={v}", "max_pool2d", _with(fastconv.max_pool2d, XP, v),
         SIZE_ERRORS, ARG("kernel_size"))
    case(f"9-max_pool2d-padding={v}", "max_pool2d", _with(fastconv.max_pool2d, XP, 2, padding=v),
         SIZE_ERRORS, ARG("padding"))
    case(f"9-max_pool2d-dilation={v}", "max_pool2d", _with(fastconv.max_pool2d, XP, 2,
                                                           dilation=v),
         SIZE_ERRORS, r"dilation|kernel_size")
    case(f"9-avg_pool2d-kernel_size={v}", "avg_pool2d", _with(fastconv.avg_pool2d, XP, (1, v)),
         SIZE_ERRORS, ARG("kernel_size"))
    case(f"9-adaptive_avg_pool2d-output_size={v}", "adaptive_avg_pool2d",
         _with(fastconv.adaptive_avg_pool2d, XP, v), SIZE_ERRORS, r"\boutput(_size)?\b")
    case(f"9-adaptive_max_pool2d-output_size={v}", "adaptive_max_pool2d",
         _with(fastconv.adaptive_max_pool2d, XP, (2, v)), SIZE_ERRORS, r"\boutput(_size)?\b")
    case(f"9-avg_pool2d_backward-input_shape={v}", "avg_pool2d_backward",
         _with(fastconv.avg_pool2d_backward, GOP, (2, 3, v, v), 2), SIZE_ERRORS,
         r"\binput_shape\b|\bgrad_x\b")
    case(f"9-conv2d_input_grad-input_shape={v}", "conv2d_input_grad",
         _with(fastconv.conv2d_input_grad, GO, W, (2, 4, v, 6)), SIZE_ERRORS,
         r"\binput_shape\b|\bgrad_x\b")
case("9-avg_pool2d-divisor_override=2**64", "avg_pool2d",
     _with(fastconv.avg_pool2d, XP, 2, divisor_override=2**64), SIZE_ERRORS,
     ARG("divisor_override"))
# valid-looking parameters whose output cannot be allocated
case("9-conv2d-output-past-memory", "conv2d", _with(fastconv.conv2d, X, W, padding=2**24),
     (OverflowError, MemoryError), r"pad|output|memory")
case("9-conv_transpose2d-output-past-int64", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, WT, stride=2**31), (OverflowError, MemoryError),
     r"stride|output")
case("9-conv_transpose2d-output-past-memory", "conv_transpose2d",
     _with(fastconv.conv_transpose2d, XT, WT, stride=2**22), (OverflowError, MemoryError),
     r"stride|output|memory")
case("9-adaptive_avg_pool2d-output-past-memory", "adaptive_avg_pool2d",
     _with(fastconv.adaptive_avg_pool2d, XP, 2**24), (OverflowError, MemoryError, ValueError),
     r"output_size|output|memory")

# --- 10. backward shape consistency -------------------------------------------------------------
for gid, g in [("batch", np.ones((3, 3, 4, 4), np.float32)),
               ("channels", np.ones((2, 4, 4, 4), np.float32)),
               ("height", np.ones((2, 3, 5, 4), np.float32)),
               ("width", np.ones((2, 3, 4, 3), np.float32)),
               ("ndim", np.ones((2, 3, 16), np.float32))]:
    case(f"10-conv2d_backward-grad_out-{gid}", "conv2d_backward",
         _with(fastconv.conv2d_backward, g, X, W), ValueError, ARG("grad_out"))
    case(f"10-conv2d_input_grad-grad_out-{gid}", "conv2d_input_grad",
         _with(fastconv.conv2d_input_grad, g, W, X.shape), ValueError, ARG("grad_out"))
    case(f"10-conv2d_weight_grad-grad_out-{gid}", "conv2d_weight_grad",
         _with(fastconv.conv2d_weight_grad, g, X, W.shape), ValueError, ARG("grad_out"))
    case(f"10-max_pool2d_backward-grad_out-{gid}", "max_pool2d_backward",
         _with(fastconv.max_pool2d_backward, g, g.astype(np.int64) * 0, XP.shape, 2), ValueError,
         r"grad_out|input_shape")
    case(f"10-avg_pool2d_backward-grad_out-{gid}", "avg_pool2d_backward",
         _with(fastconv.avg_pool2d_backward, g, XP.shape, 2), ValueError,
         r"grad_out|input_shape")
case("10-conv_transpose2d_backward-grad_out", "conv_transpose2d_backward",
     _with(fastconv.conv_transpose2d_backward, np.ones((2, 2, 7, 6), np.float32), XT, WT),
     ValueError, ARG("grad_out"))
for sid, s in [("len2", (6, 6)), ("len5", (2, 4, 6, 6, 1)), ("negative", (2, 4, -6, 6)),
               ("negative-batch", (-2, 4, 6, 6)), ("huge", (2, 4, 2**40, 2**40)),
               ("huge-int64", (2, 4, 2**62, 2**62)), ("inconsistent", (2, 4, 9, 9)),
               ("inconsistent-channels", (2, 5, 6, 6)), ("not-a-shape", 7)]:
    exc = (TypeError, ValueError) if sid == "not-a-shape" else SIZE_ERRORS if "huge" in sid \
        else ValueError
    case(f"10-conv2d_input_grad-input_shape-{sid}", "conv2d_input_grad",
         _with(fastconv.conv2d_input_grad, GO, W, s), exc,
         r"\binput_shape\b|\bgrad_x\b" if "huge" in sid else ARG("input_shape"))
for sid, s in [("len3", (3, 4, 3)), ("negative", (3, 4, -3, 3)), ("inconsistent", (3, 4, 5, 5)),
               ("channels", (3, 2, 3, 3)), ("out-channels", (4, 4, 3, 3)),
               ("zero-kernel", (3, 4, 0, 3)), ("huge", (3, 4, 2**40, 3))]:
    exc = SIZE_ERRORS if sid == "huge" else ValueError
    case(f"10-conv2d_weight_grad-weight_shape-{sid}", "conv2d_weight_grad",
         _with(fastconv.conv2d_weight_grad, GO, X, s), exc,
         r"\bweight_shape\b|\bkernel\b" if sid == "huge" else ARG("weight_shape"))
case("10-conv2d_input_grad-grad_out-and-input_shape", "conv2d_input_grad",
     _with(fastconv.conv2d_input_grad, GO, W, (2, 4, 9, 9)), ValueError, ARG("grad_out"),
     ARG("input_shape"))
for sid, s in [("len2", (8, 8)), ("negative", (2, 3, -8, 8)), ("channels", (2, 4, 8, 8)),
               ("batch", (3, 3, 8, 8)), ("spatial", (2, 3, 12, 8))]:
    case(f"10-max_pool2d_backward-input_shape-{sid}", "max_pool2d_backward",
         _with(fastconv.max_pool2d_backward, GOP, IDXP, s, 2), ValueError,
         r"input_shape|grad_out")
    if sid != "spatial":  # any input size is consistent with an adaptive output size
        case(f"10-adaptive_avg_pool2d_backward-input_shape-{sid}",
             "adaptive_avg_pool2d_backward",
             _with(fastconv.adaptive_avg_pool2d_backward, GOA, s), ValueError,
             r"input_shape|grad_out")
    case(f"10-global_avg_pool2d_backward-input_shape-{sid}", "global_avg_pool2d_backward",
         _with(fastconv.global_avg_pool2d_backward, np.ones((2, 3, 1, 1), np.float32),
               s if sid != "spatial" else (2, 3, 8, -1)), ValueError, r"input_shape|grad_out")
case("10-global_avg_pool2d_backward-grad_out-not-1x1", "global_avg_pool2d_backward",
     _with(fastconv.global_avg_pool2d_backward, np.ones((2, 3, 2, 1), np.float32), XP.shape),
     ValueError, r"grad_out")

# --- 11. output_padding -------------------------------------------------------------------------
for fname in ("conv_transpose2d", "conv_transpose2d_backward"):
    f = CONV_FNS[fname]
    for kw in [dict(stride=2, output_padding=2), dict(stride=1, output_padding=1),
               dict(stride=(1, 2), output_padding=(0, 2)), dict(output_padding=-1),
               dict(stride=2, dilation=2, output_padding=2),
               dict(stride=3, dilation=1, output_padding=(3, 0))]:
        case(f"11-{fname}-{kw}", fname, (lambda f=f, kw=kw: f(**kw)), ValueError,
             ARG("output_padding"))

# --- 12. pool parameters ------------------------------------------------------------------------
for fname, f in POOL_FNS.items():
    for k in (0, -1, (2, 0), (-2, 2)):
        case(f"12-{fname}-kernel_size={k}", fname, (lambda f=f, k=k: f(k)), ValueError,
             ARG("kernel_size"))
    bad = [("stride", 0), ("stride", -1), ("stride", (2, 0)), ("padding", -1),
           ("padding", (0, -1)), ("padding", 2), ("padding", (0, 2)), ("padding", "bogus"),
           ("layout", "NWHC")]
    if fname.startswith("max"):
        bad += [("dilation", 0), ("dilation", (1, -1))]
    else:
        bad += [("divisor_override", 0), ("divisor_override", -3)]
    for arg, val in bad:
        case(f"12-{fname}-{arg}={val!r}", fname, (lambda f=f, arg=arg, val=val: f(2, **{arg: val})),
             ValueError, ARG(arg))
for fname, f in [("adaptive_avg_pool2d", fastconv.adaptive_avg_pool2d),
                 ("adaptive_max_pool2d", fastconv.adaptive_max_pool2d)]:
    for v in (0, -1, (2, 0), (2, 3, 4)):
        case(f"12-{fname}-output_size={v}", fname, (lambda f=f, v=v: f(XP, v)), ValueError,
             ARG("output_size"))
    case(f"12-{fname}-layout", fname, (lambda f=f: f(XP, 2, layout="CHWN")), ValueError,
         ARG("layout"))
case("12-global_avg_pool2d-layout", "global_avg_pool2d",
     _with(fastconv.global_avg_pool2d, XP, layout="HW"), ValueError, ARG("layout"))

# --- 13. kernel larger than the padded input ----------------------------------------------------
for fname in ("max_pool2d", "avg_pool2d"):
    f = POOL_FNS[fname]
    case(f"13-{fname}-kernel-too-large", fname, (lambda f=f: f(9)), ValueError,
         ARG("kernel_size"))
    case(f"13-{fname}-kernel-too-large-padded", fname, (lambda f=f: f((12, 2), padding=(1, 0))),
         ValueError, ARG("kernel_size"))
case("13-max_pool2d-dilated-too-large", "max_pool2d",
     _with(fastconv.max_pool2d, XP, 3, dilation=4), ValueError, r"kernel_size|dilation")

# --- 16. max-pool backward indices -----------------------------------------------------------------
def _idx(mod):
    i = IDXP.copy()
    mod(i)
    return i


for iid, idx in [("negative", _idx(lambda i: i.__setitem__((0, 0, 0, 0), -1))),
                 ("too-large", _idx(lambda i: i.__setitem__((1, 2, 3, 3), 64))),
                 ("huge", _idx(lambda i: i.__setitem__((0, 1, 2, 2), 2**62))),
                 ("int64-min", _idx(lambda i: i.__setitem__((0, 1, 2, 2), -2**63))),
                 ("outside-window", _idx(lambda i: i.__setitem__((0, 0, 0, 0), 63))),
                 ("outside-window-neighbour", _idx(lambda i: i.__setitem__((1, 1, 1, 1), 2))),
                 ("shape", IDXP[:, :, :3]), ("ndim", IDXP.reshape(2, 3, 16))]:
    case(f"16-max_pool2d_backward-indices-{iid}", "max_pool2d_backward",
         _with(fastconv.max_pool2d_backward, GOP, idx, XP.shape, 2), ValueError,
         ARG("indices"))
for dt in (np.int32, np.float64, np.uint64, np.float32):
    case(f"16-max_pool2d_backward-indices-{np.dtype(dt).name}", "max_pool2d_backward",
         _with(fastconv.max_pool2d_backward, GOP, IDXP.astype(dt), XP.shape, 2), TypeError,
         ARG("indices"))
for iid, pos in [("negative", -1), ("too-large", 64), ("outside-window", 63)]:
    bad_i = IDXA.copy()
    bad_i[0, 0, 0, 0] = pos
    case(f"16-adaptive_max_pool2d_backward-indices-{iid}", "adaptive_max_pool2d_backward",
         _with(fastconv.adaptive_max_pool2d_backward, GOA, bad_i, XP.shape), ValueError,
         ARG("indices"))
case("16-adaptive_max_pool2d_backward-indices-int32", "adaptive_max_pool2d_backward",
     _with(fastconv.adaptive_max_pool2d_backward, GOA, IDXA.astype(np.int32), XP.shape),
     TypeError, ARG("indices"))
case("16-adaptive_max_pool2d_backward-indices-shape", "adaptive_max_pool2d_backward",
     _with(fastconv.adaptive_max_pool2d_backward, GOA, IDXA[:, :, :2], XP.shape), ValueError,
     ARG("indices"))

# --- 17. / 18. avg-pool divisor and backward shapes ------------------------------------------------
case("17-avg_pool2d-divisor_override=0", "avg_pool2d",
     _with(fastconv.avg_pool2d, XP, 2, divisor_override=0), ValueError, ARG("divisor_override"))
case("17-avg_pool2d_backward-divisor_override=0", "avg_pool2d_backward",
     _with(fastconv.avg_pool2d_backward, GOP, XP.shape, 2, divisor_override=0), ValueError,
     ARG("divisor_override"))
for sid, s in [("spatial", (2, 3, 10, 10)), ("channels", (2, 2, 8, 8)), ("batch", (1, 3, 8, 8)),
               ("len", (3, 8, 8, 1, 1)), ("negative", (2, 3, -8, 8)),
               ("stride-mismatch", (2, 3, 4, 4))]:
    case(f"18-avg_pool2d_backward-input_shape-{sid}", "avg_pool2d_backward",
         _with(fastconv.avg_pool2d_backward, GOP, s, 2), ValueError, r"input_shape|grad_out")
    case(f"18-avg_pool2d_backward-input_shape-{sid}-ceil", "avg_pool2d_backward",
         _with(fastconv.avg_pool2d_backward, GOP, s, 2, ceil_mode=True, padding=1), ValueError,
         r"input_shape|grad_out")


# ================================================================================================
# crash safety: run every case in a child interpreter first
# ================================================================================================
_CHILD = r"""
import sys, faulthandler
faulthandler.enable()
sys.path.insert(0, {tests!r})
import test_errors as t
start = int(sys.argv[1])
for i in range(start, len(t.CASES)):
    print("CASE", i, flush=True)
    try:
        t.CASES[i].fn()
    except BaseException:
        pass
print("DONE", flush=True)
"""


@functools.lru_cache(maxsize=None)
def _crash_report():
    """{case id: description} for every case that killed a child interpreter."""
    crashed = {}
    start = 0
    script = _CHILD.format(tests=os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, FASTCONV_NUM_THREADS="2")
    while start < len(CASES):
        p = subprocess.run([sys.executable, "-c", script, str(start)], capture_output=True,
                           text=True, timeout=600, env=env)
        if "DONE" in p.stdout and p.returncode == 0:
            break
        seen = [int(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("CASE ")]
        if not seen:
            crashed["<import>"] = f"rc={p.returncode} {p.stderr[-2000:]}"
            break
        last = seen[-1]
        crashed[CASES[last].id] = f"rc={p.returncode}; {p.stderr[-1500:]}"
        start = last + 1
    return crashed


def test_no_crash():
    """No bad input kills the interpreter (segfault, abort, hang)."""
    crashed = _crash_report()
    assert not crashed, "bad inputs crashed a child interpreter:\n" + "\n".join(
        f"  {k}: {v}" for k, v in crashed.items())


# ================================================================================================
# in-process checks: exception type, message names function and argument, little allocation
# ================================================================================================
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c):
    if c.id in _crash_report():
        pytest.fail(f"crashed the interpreter in a child process: {_crash_report()[c.id]}")
    tracemalloc.start()
    try:
        with pytest.raises(c.exc) as ei:
            c.fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(ei.value)
    assert re.search(r"\b" + re.escape(c.fname) + r"\b", msg), \
        f"message does not name the function {c.fname!r}: {msg!r}"
    for w in c.words:
        assert re.search(w, msg), f"message does not match {w!r}: {msg!r}"
    assert peak < 32 * 2**20, f"{peak / 2**20:.1f} MiB allocated before raising"


def test_case_count():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for item in (1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18):
        assert any(i.startswith(f"{item}-") for i in ids), item


# ------------------------------------------------------------------------------------------------
# 3. unusual memory gives the contiguous result (every op)
# ------------------------------------------------------------------------------------------------
def _views(a):
    """misaligned + read-only, negative strides, Fortran order."""
    buf = bytearray(a.nbytes + 1)
    mis = np.frombuffer(buf, a.dtype, a.size, offset=1).reshape(a.shape)
    mis[...] = a
    mis.setflags(write=False)
    neg = np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    return {"misaligned-readonly": mis, "negative": neg, "fortran": np.asfortranarray(a)}


OPS3 = {
    "conv2d": lambda x: fastconv.conv2d(x, W, B, padding=1),
    "conv_transpose2d": lambda x: fastconv.conv_transpose2d(x[:, :3], WT, stride=2),
    "max_pool2d": lambda x: fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True),
    "avg_pool2d": lambda x: fastconv.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
    "adaptive_avg_pool2d": lambda x: fastconv.adaptive_avg_pool2d(x, (2, 4)),
    "adaptive_max_pool2d": lambda x: fastconv.adaptive_max_pool2d(x, (4, 2), return_indices=True),
    "global_avg_pool2d": lambda x: fastconv.global_avg_pool2d(x),
}


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("op", list(OPS3))
def test_memory_layouts_match_contiguous(op):
    rng = seeded_rng("item3", op)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    base = OPS3[op](x)
    for name, v in list(_views(x).items()) + [("broadcast", np.broadcast_to(x[:1], x.shape))]:
        ref = base if name != "broadcast" else OPS3[op](np.ascontiguousarray(v))
        got = OPS3[op](v)
        for g, r in zip(got if isinstance(got, tuple) else (got,),
                        ref if isinstance(ref, tuple) else (ref,)):
            assert_same(g, r, f"{op} {name}")


# ------------------------------------------------------------------------------------------------
# 4. out= : errors leave out untouched; NaN prefill harmless; out never replaced
# ------------------------------------------------------------------------------------------------
def test_out_errors_leave_out_untouched():
    for shape, dt in [((2, 3, 4, 5), np.float32), ((2, 3, 4, 4), np.float64)]:
        out = np.full(shape, -7.0, dt)
        with pytest.raises((ValueError, TypeError), match="out"):
            fastconv.conv2d(X, W, B, out=out)
        assert (out == -7.0).all()


def test_out_overlapping_input_refused():
    x = np.ones((1, 3, 5, 5), np.float32)
    w = np.ones((3, 3, 1, 1), np.float32)
    x_before = x.copy()
    with pytest.raises(ValueError, match=r"\bout\b"):
        fastconv.conv2d(x, w, out=x)
    assert_same(x, x_before)
    wbig = np.ones((3, 3, 5, 5), np.float32)      # out aliasing the weight buffer
    xw = np.ones((3, 3, 9, 9), np.float32)
    with pytest.raises(ValueError, match=r"\bout\b"):
        fastconv.conv2d(xw, wbig, out=wbig)
    assert (wbig == 1).all()
    # partial overlap: out is a view into x's buffer
    buf = np.ones(2 * 75, np.float32)
    xv = buf[:75].reshape(1, 3, 5, 5)
    ov = buf[50:125].reshape(1, 3, 5, 5)
    with pytest.raises(ValueError, match=r"\bout\b"):
        fastconv.conv2d(xv, w, out=ov)
    assert (buf == 1).all()


def test_out_nan_prefill_and_identity():
    out = np.full((2, 3, 4, 4), np.nan, np.float32)
    res = fastconv.conv2d(X, W, B, out=out)
    assert res is out
    assert_same(out, R.conv2d(X, W, B).astype(np.float32))


# ------------------------------------------------------------------------------------------------
# 8. N = 0, O = 0, C = 0
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty_dims(layout):
    nhwc = layout == "NHWC"
    t = (lambda s: (s[0], s[2], s[3], s[1])) if nhwc else (lambda s: s)
    tw = (lambda s: (s[2], s[3], s[1], s[0])) if nhwc else (lambda s: s)
    y = fastconv.conv2d(np.ones(t((0, 4, 6, 6))), np.ones(tw((3, 4, 3, 3))), layout=layout)
    assert y.shape == t((0, 3, 4, 4))
    y = fastconv.conv2d(np.ones(t((2, 4, 6, 6))), np.ones(tw((0, 4, 3, 3))), layout=layout)
    assert y.shape == t((2, 0, 4, 4))
    y = fastconv.conv2d(np.ones(t((2, 0, 6, 6))), np.ones(tw((3, 0, 3, 3))),
                        np.arange(3.0), layout=layout)
    assert y.shape == t((2, 3, 4, 4))
    assert_same(y, np.broadcast_to(np.arange(3.0)[:, None, None] if not nhwc else np.arange(3.0),
                                   y.shape))
    gi = fastconv.conv2d_input_grad(np.ones(t((0, 3, 4, 4))), np.ones(tw((3, 4, 3, 3))),
                                    t((0, 4, 6, 6)), layout=layout)
    assert gi.shape == t((0, 4, 6, 6))
    gw = fastconv.conv2d_weight_grad(np.ones(t((0, 3, 4, 4))), np.ones(t((0, 4, 6, 6))),
                                     tw((3, 4, 3, 3)), layout=layout)
    assert gw.shape == tw((3, 4, 3, 3)) and not gw.any()


# ------------------------------------------------------------------------------------------------
# 9. huge stride: either refused (naming stride) or the correct single-window result
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("v", HUGE, ids=str)
@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "avg_pool2d"])
def test_huge_stride(op, v):
    rng = seeded_rng("huge-stride", op)
    x = int_data(rng, (1, 4, 6, 6), np.float32)
    call = {"conv2d": lambda s: fastconv.conv2d(x, W, stride=s),
            "max_pool2d": lambda s: fastconv.max_pool2d(x, 2, stride=s),
            "avg_pool2d": lambda s: fastconv.avg_pool2d(x, 2, stride=s)}[op]
    tracemalloc.start()
    try:
        got = call(v)
        peak = tracemalloc.get_traced_memory()[1]
    except (ValueError, OverflowError) as e:
        assert re.search(ARG("stride"), str(e)) and op in str(e), str(e)
        return
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20
    want = call(1)[..., :1, :1]
    assert_same(got, want)


# ------------------------------------------------------------------------------------------------
# 11. output_padding < dilation (but >= stride) is valid
# ------------------------------------------------------------------------------------------------
def test_output_padding_below_dilation_is_valid():
    rng = seeded_rng("op-dil")
    x = int_data(rng, (1, 3, 4, 4), np.float64)
    w = int_data(rng, (3, 2, 3, 3), np.float64)
    got = fastconv.conv_transpose2d(x, w, stride=1, dilation=2, output_padding=1)
    assert_same(got, R.conv_transpose2d(x, w, stride=1, dilation=2, output_padding=1))


# ------------------------------------------------------------------------------------------------
# 13. ceil_mode never creates a window starting in the right padding
# ------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("h,k,s,p", [(5, 2, 2, 1), (6, 3, 2, 1), (4, 2, 3, 1), (7, 3, 3, 1),
                                     (9, 4, 4, 2), (2, 2, 2, 1)])
def test_ceil_mode_drops_window_in_right_padding(h, k, s, p):
    rng = seeded_rng("ceil", h, k, s, p)
    x = rng.standard_normal((1, 2, h, h))
    want_n = R.pool_out_size(h, k, s, p, p, 1, True)
    assert (want_n - 1) * s < h + p
    y, idx = fastconv.max_pool2d(x, k, stride=s, padding=p, ceil_mode=True, return_indices=True)
    assert y.shape == (1, 2, want_n, want_n)
    ry, ridx = R.max_pool2d(x, k, stride=s, padding=p, ceil_mode=True)
    assert_same(y, ry)
    assert_same(idx, ridx)
    for cip in (True, False):
        a = fastconv.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=True, count_include_pad=cip)
        assert a.shape == (1, 2, want_n, want_n) and np.isfinite(a).all()
        ra = R.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=True, count_include_pad=cip)
        assert np.allclose(a, ra, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# 14. integer size math: a 1 x 16777217 plane
# ------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_long_plane_kernel_1(layout):
    L = 16777217  # 2**24 + 1: not representable in float32
    x = np.arange(L, dtype=np.float32) % np.float32(1021) - np.float32(500)
    shape = (1, 1, 1, L) if layout == "NCHW" else (1, L, 1, 1)
    x = x.reshape(shape)
    y, idx = fastconv.max_pool2d(x, 1, return_indices=True, layout=layout)
    assert y.shape == shape and idx.shape == shape
    assert np.array_equal(y, x)
    assert np.array_equal(idx.reshape(-1), np.arange(L, dtype=np.int64))
    del idx
    a = fastconv.avg_pool2d(x, 1, layout=layout)
    assert a.shape == shape and np.array_equal(a, x)


# ------------------------------------------------------------------------------------------------
# 15. NaN / -inf / ties in max pooling (both layouts, SIMD-width channel counts, every ISA)
# ------------------------------------------------------------------------------------------------
PLANE = np.array([[1, 5, 5, np.nan, 0, 0],
                  [5, np.nan, 2, 0, 0, 7],
                  [-np.inf, -np.inf, 3, 3, np.nan, 1],
                  [-np.inf, -np.inf, 3, 3, 1, np.nan],
                  [2, 2, -1, -1, -np.inf, 4],
                  [2, 2, -1, -1, 4, -np.inf]])
# 2x2 stride 2: NaN -> last NaN (index 7); NaN at 3; 7 at 11; -inf window -> first (12);
# tie 3 -> first (14); NaN,NaN -> last NaN (23); 2 tie -> 24; -1 tie -> 26; -inf/4 -> 29
PLANE_MAX = [[np.nan, np.nan, 7], [-np.inf, 3, np.nan], [2, -1, 4]]
PLANE_IDX = [[7, 3, 11], [12, 14, 23], [24, 26, 29]]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("channels", [1, 5, 8, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool_nan_inf_ties(layout, dtype, channels):
    x = np.stack([PLANE] * channels)[None].astype(dtype)       # (1, C, 6, 6)
    # vary the channels so that lanes differ: channel c rolls the plane's columns by c % 2
    for c in range(1, channels, 2):
        x[0, c] = np.roll(PLANE, 2, axis=1)
    xl = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y, idx = fastconv.max_pool2d(xl, 2, return_indices=True, layout=layout)
    ry, ridx = R.max_pool2d(xl, 2, layout=layout)
    assert_same(y, ry)
    assert_same(idx, ridx)
    ch0 = (slice(None), 0) if layout == "NCHW" else (slice(None), slice(None), slice(None), 0)
    assert_same(y[ch0][0], np.array(PLANE_MAX))
    assert_same(idx[ch0][0], np.array(PLANE_IDX))
    assert (idx >= 0).all()
    # adaptive max over the same windows
    ay, aidx = fastconv.adaptive_max_pool2d(xl, 3, return_indices=True, layout=layout)
    assert_same(ay, y)
    assert_same(aidx, idx)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_all_neg_inf_windows_with_padding(layout):
    """-inf everywhere: value -inf, index a valid in-window element (PyTorch: the first),
    padding never wins; also with dilation."""
    x = np.full((1, 9, 5, 5), -np.inf, np.float32)
    xl = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for kw in (dict(padding=1, stride=2), dict(padding=1, stride=1, dilation=2),
               dict(padding="same", stride=2), dict(padding=1, stride=2, ceil_mode=True)):
        y, idx = fastconv.max_pool2d(xl, 3, return_indices=True, layout=layout, **kw)
        ry, ridx = R.max_pool2d(xl, 3, layout=layout, **kw)
        assert_same(y, ry)
        assert_same(idx, ridx)
        assert (idx >= 0).all() and (idx < 25).all()


# ------------------------------------------------------------------------------------------------
# 16. a rejected backward writes nothing and leaves inputs alone
# ------------------------------------------------------------------------------------------------
def test_bad_indices_leave_inputs_untouched():
    idx = IDXP.copy()
    idx[1, 2, 3, 3] = 10**6
    go = GOP.copy()
    with pytest.raises(ValueError, match="indices"):
        fastconv.max_pool2d_backward(go, idx, XP.shape, 2)
    assert (go == GOP).all() and idx[1, 2, 3, 3] == 10**6 and (idx.reshape(-1)[:-1]
                                                                == IDXP.reshape(-1)[:-1]).all()


# ------------------------------------------------------------------------------------------------
# 17. avg pool divisor rules
# ------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_avg_pool_ceil_values_and_no_zero_division(layout):
    x = np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7)
    xl = x if layout == "NCHW" else x.reshape(1, 7, 7, 1)
    got = fastconv.avg_pool2d(xl, 2, stride=3, ceil_mode=True, layout=layout)
    want = np.array([[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]])
    assert_same(got.reshape(3, 3), want)
    # count_include_pad=False with padding + ceil overhang: never a division by zero
    for kw in (dict(padding=1, stride=3, ceil_mode=True), dict(padding=2, stride=4,
                                                               ceil_mode=True)):
        a = fastconv.avg_pool2d(xl, 4, count_include_pad=False, layout=layout, **kw)
        assert np.isfinite(a).all()
        assert_close(a, R.avg_pool2d(xl, 4, count_include_pad=False, layout=layout, **kw),
                     dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# the allocation cap (FASTCONV_MAX_MEMORY): refused before anything is allocated
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cap, ok", [("1M", False), ("3.5m", True), ("1048576", False),
                                     ("2GiB", True), ("junk", True)])
def test_memory_cap(monkeypatch, cap, ok):
    monkeypatch.setenv("FASTCONV_MAX_MEMORY", cap)
    x = np.ones((1, 4, 256, 256), np.float32)      # 1 MiB in, a 2 MiB result below
    w = np.ones((8, 4, 1, 1), np.float32)
    if ok:
        assert fastconv.conv2d(x, w).shape == (1, 8, 256, 256)
    else:
        with pytest.raises(MemoryError, match=r"conv2d: output .*FASTCONV_MAX_MEMORY"):
            fastconv.conv2d(x, w)
