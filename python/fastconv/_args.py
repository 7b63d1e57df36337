"""Validation and normalisation of every public argument; the user-facing messages live here.

Each helper handles one kind of argument and is shared by all ops. Messages name the function, the
argument, the value received and the rule. Sizes are computed with Python ints (no overflow)
before anything is allocated or the core is called. Exceptions: TypeError for non-arrays and bad
dtypes, ValueError for bad values and shapes, OverflowError for sizes past int64 or past the
physical memory, RuntimeError for CUDA device arrays when CUDA is unavailable.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Tuple

import numpy as np

from . import _core
from . import cuda as _cuda

INT_MAX = 2**31 - 1  # largest geometry parameter (stride, padding, kernel_size, ...)
INT64_MAX = 2**63 - 1
_PADDED_MAX = 2**61 - 1  # input + padding: the core's output_size accepts up to this
LAYOUTS = {"NCHW": 0, "NHWC": 1}
_X_AXES = ("(N, C, H, W)", "(N, H, W, C)")
_W_AXES = ("(O, C/groups, KH, KW)", "(KH, KW, C/groups, O)")

Pair = Tuple[int, int]
Pads = Tuple[int, int, int, int]  # top, bottom, left, right


# --- scalars -----------------------------------------------------------------------------------
def _what(v) -> str:
    if isinstance(v, np.ndarray):
        return f"ndarray of shape {v.shape} and dtype {v.dtype}"
    if v is None:
        return "None"
    if not isinstance(v, (int, float, complex, str, bytes, tuple, list, dict, np.generic)):
        return f"{type(v).__module__}.{type(v).__qualname__} object"
    r = repr(v)
    return f"{type(v).__name__} {r if len(r) <= 60 else r[:57] + '...'}"


def to_int(fn: str, name: str, v, lo: int = 0, hi: int = INT_MAX) -> int:
    """Python int / NumPy integer in [lo, hi]; bool and float are refused (TypeError)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int, got {_what(v)}")
    v = int(v)
    if v > hi:
        limit = "2**31-1" if hi == INT_MAX else "2**63-1" if hi == INT64_MAX else str(hi)
        raise OverflowError(f"{fn}: {name}={v} exceeds the supported maximum {limit}")
    if v < lo:
        raise ValueError(f"{fn}: {name} must be >= {lo}, got {v}")
    return v


def to_pair(fn: str, name: str, v, lo: int) -> Pair:
    """int (used for H and W) or a pair (h, w) of ints >= lo."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{fn}: {name} must be an int or a pair (h, w), got {v!r}")
        return to_int(fn, f"{name}[0]", v[0], lo), to_int(fn, f"{name}[1]", v[1], lo)
    i = to_int(fn, name, v, lo)
    return i, i


def flag(fn: str, name: str, v) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {_what(v)}")
    return bool(v)


def layout(fn: str, v) -> int:
    """'NCHW' -> 0, 'NHWC' -> 1."""
    if not isinstance(v, str):
        raise TypeError(f"{fn}: layout must be 'NCHW' or 'NHWC', got {_what(v)}")
    if v not in LAYOUTS:
        raise ValueError(f"{fn}: layout must be 'NCHW' or 'NHWC', got {v!r}")
    return LAYOUTS[v]


def divisor(fn: str, v) -> int:
    """divisor_override: None -> 0 (none), else an int >= 1."""
    return 0 if v is None else to_int(fn, "divisor_override", v, lo=1)


def shape_arg(fn: str, name: str, v, lengths=(3, 4)) -> Tuple[int, ...]:
    """A shape (input_shape / weight_shape): tuple or list of non-negative ints."""
    if not isinstance(v, (tuple, list)):
        raise TypeError(f"{fn}: {name} must be a tuple of ints, got {_what(v)}")
    if len(v) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise ValueError(f"{fn}: {name} must have {want} entries, got {tuple(v)!r}")
    return tuple(to_int(fn, f"{name}[{i}]", e, 0, INT64_MAX) for i, e in enumerate(v))


# --- arrays ------------------------------------------------------------------------------------
def no_device(fn: str, **arrays) -> None:
    """CUDA arrays (__cuda_array_interface__ / CUDA __dlpack__) -> RuntimeError, before anything."""
    for name, a in arrays.items():
        if _cuda._is_device_array(a):
            why = ("the GPU path of the functional ops is not implemented yet"
                   if _cuda.is_available() else _cuda._status())
            raise RuntimeError(f"{fn}: {name} is a CUDA device array ({type(a).__module__}."
                               f"{type(a).__qualname__}) but fastconv's CUDA kernels are not "
                               f"built/available ({why}); pass a NumPy array")


def float_array(fn: str, name: str, a, like: Optional[Tuple[str, np.ndarray]] = None):
    """A float32/float64 ndarray (no conversion), of the same dtype as like=(name, array)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {_what(a)} "
                        f"(lists, scalars and None are not converted)")
    if a.dtype.type not in (np.float32, np.float64):
        raise TypeError(f"{fn}: {name} has dtype {a.dtype}; only float32 and float64 are supported")
    if like is not None and a.dtype.type is not like[1].dtype.type:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but {like[0]} has dtype "
                        f"{like[1].dtype}; they must share one dtype (no implicit casting)")
    return a


def index_array(fn: str, a, shape) -> np.ndarray:
    """max-pool indices: an int64 ndarray of the given shape (that of grad_out)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: indices must be a numpy.ndarray of int64, got {_what(a)}")
    if a.dtype.kind != "i" or a.dtype.itemsize != 8:
        raise TypeError(f"{fn}: indices has dtype {a.dtype}; it must be int64")
    if a.shape != tuple(shape):
        raise ValueError(f"{fn}: indices has shape {a.shape} but grad_out has shape {tuple(shape)}")
    return a


def batched(fn: str, name: str, a: np.ndarray, lay: int):
    """3-D (unbatched) or 4-D array -> (4-D view, unbatched?)."""
    if a.ndim not in (3, 4):
        axes = _X_AXES[lay]
        raise ValueError(f"{fn}: {name} must be 4-D {axes} or 3-D unbatched ({axes[4:]} for "
                         f"layout={list(LAYOUTS)[lay]!r}, got ndim={a.ndim} (shape {a.shape})")
    return (a[None], True) if a.ndim == 3 else (a, False)


def weight_array(fn: str, w, like: Tuple[str, np.ndarray], lay: int) -> np.ndarray:
    float_array(fn, "weight", w, like=like)
    if w.ndim != 4:
        raise ValueError(f"{fn}: weight must be 4-D {_W_AXES[lay]} for layout="
                         f"{list(LAYOUTS)[lay]!r}, got ndim={w.ndim} (shape {w.shape})")
    return w


def bias_array(fn: str, b, length: int, like: Tuple[str, np.ndarray]):
    if b is None:
        return None
    float_array(fn, "bias", b, like=like)
    if b.shape != (length,):
        raise ValueError(f"{fn}: bias must be 1-D of length {length} (the output channels), "
                         f"got shape {b.shape}")
    return b


def expect_shape(fn: str, name: str, a: np.ndarray, shape, why: str) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{fn}: {name} has shape {a.shape} but {why} has shape {tuple(shape)}")


def c_array(a: np.ndarray) -> np.ndarray:
    """The array itself when C-contiguous, aligned and native; else such a copy. Never writes a."""
    a = np.ascontiguousarray(a)
    if not (a.flags.aligned and a.dtype.isnative):
        a = a.astype(a.dtype.newbyteorder("="), order="C")
    return a


_PHYS_MEM = None


def physical_memory() -> int:
    """Bytes of physical memory (0 if unknown)."""
    global _PHYS_MEM
    if _PHYS_MEM is None:
        try:
            _PHYS_MEM = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            _PHYS_MEM = 0
    return _PHYS_MEM


def available_memory() -> int:
    """Bytes the kernel reports as available now (MemAvailable; 0 if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_cap() -> int:
    """The most bytes one call may allocate for its results, beyond which it raises MemoryError
    (0: no cap): FASTCONV_MAX_MEMORY (bytes, or with a K/M/G/T suffix) and the process's
    address-space limit (RLIMIT_AS), whichever is smaller."""
    cap = 0
    v = os.environ.get("FASTCONV_MAX_MEMORY", "").strip().upper().rstrip("B").rstrip("I")
    if v:
        try:
            unit = v[-1] if v[-1] in _UNITS else ""
            cap = int(float(v[:len(v) - len(unit)]) * _UNITS[unit])
        except (ValueError, IndexError):
            cap = 0
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            cap = min(cap, soft) if cap else soft
    except (ImportError, OSError, ValueError, AttributeError):
        pass
    return max(cap, 0)


def check_alloc(fn: str, what: str, shape, dtype) -> None:
    """OverflowError if an array of this shape cannot be indexed by int64 or exceeds the RAM;
    MemoryError if it exceeds memory_cap() or the memory available right now (checked above 1 GiB only, so a
    request the OOM killer would meet while the kernel writes it fails cleanly instead).
    `dtype` may be an item size in bytes (several arrays of this shape allocated together)."""
    n = math.prod(shape)
    itemsize = dtype if isinstance(dtype, int) else np.dtype(dtype).itemsize
    nbytes = n * itemsize
    if nbytes <= 2**20:  # the common case: nothing to check past int64 or any cap
        return
    tname = f"{itemsize} bytes per element" if isinstance(dtype, int) else np.dtype(dtype).name
    if nbytes > INT64_MAX:
        raise OverflowError(f"{fn}: {what} of shape {tuple(shape)} has {n} elements ({nbytes} "
                            f"bytes), more than int64 can index")
    mem = physical_memory()
    if mem and nbytes > mem:
        raise OverflowError(f"{fn}: {what} of shape {tuple(shape)} ({tname}) needs "
                            f"{nbytes} bytes ({nbytes / 2**30:.3g} GiB), more than the physical "
                            f"memory ({mem / 2**30:.3g} GiB)")
    cap = memory_cap()
    if cap and nbytes > cap:
        raise MemoryError(f"{fn}: {what} of shape {tuple(shape)} ({tname}) needs "
                          f"{nbytes / 2**30:.3g} GiB, more than the {cap / 2**30:.3g} GiB allowed "
                          f"(FASTCONV_MAX_MEMORY / the address-space limit)")
    if nbytes > 2**30:
        avail = available_memory()
        if avail and nbytes > avail:
            raise MemoryError(f"{fn}: {what} of shape {tuple(shape)} ({tname}) needs "
                              f"{nbytes / 2**30:.3g} GiB, more than the {avail / 2**30:.3g} GiB "
                              f"of memory available now")


_CACHED_BYTES = 1 << 20
result_cache_on = True  # kept by fastconv.set_result_cache


def empty(shape, dtype) -> np.ndarray:
    """A new uninitialised C-contiguous result array. Those of >= 1 MiB come from the compiled
    core's bounded cache of blocks that earlier results gave back (no page faults on reuse; see
    fastconv.set_result_cache); their numpy `base` is the capsule that owns the block. With the
    cache off, numpy.empty as before."""
    dt = np.dtype(dtype)
    if not result_cache_on or math.prod(shape) * dt.itemsize < _CACHED_BYTES:
        return np.empty(shape, dt)
    return _core.empty_result(shape, dt)


class Dest:
    """Where a result goes: a fresh array, or the user's out= (validated before any compute).

    `buf` is the 4-D C-contiguous aligned array the core writes; `done()` copies it into `out`
    when `out` could not be written directly, and returns the user-facing result."""

    def __init__(self, fn, out, shape, dtype, unbatched: bool, inputs: dict):
        self.out, self.unbatched = out, unbatched
        if out is None:
            self.buf = empty(shape, dtype)
            return
        user_shape = tuple(shape[1:]) if unbatched else tuple(shape)
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{fn}: out must be a numpy.ndarray or None, got {_what(out)}")
        if out.shape != user_shape:
            raise ValueError(f"{fn}: out has shape {out.shape} but the result has shape "
                             f"{user_shape}")
        if out.dtype.type is not np.dtype(dtype).type:
            raise TypeError(f"{fn}: out has dtype {out.dtype} but the result has dtype "
                            f"{np.dtype(dtype)} (no implicit casting)")
        if not out.flags.writeable:
            raise ValueError(f"{fn}: out is read-only")
        for name, a in inputs.items():
            if isinstance(a, np.ndarray) and _overlaps(out, a):
                raise ValueError(f"{fn}: out shares memory with {name}; outputs must not overlap "
                                 f"inputs")
        self.direct = out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative
        self.buf = (out[None] if unbatched else out) if self.direct else empty(shape, dtype)

    def done(self) -> np.ndarray:
        res = self.buf[0] if self.unbatched else self.buf
        if self.out is None:
            return res
        if not self.direct:
            np.copyto(self.out, res)
        return self.out


_TooHardError = getattr(getattr(np, "exceptions", np), "TooHardError")


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=1 << 20))
    except _TooHardError:  # undecidable cheaply: treat as overlapping
        return True


# --- layouts -----------------------------------------------------------------------------------
def nchw(shape, lay: int) -> Tuple[int, int, int, int]:
    """x-like shape in `lay` -> (N, C, H, W)."""
    s = tuple(int(d) for d in shape)
    return (s[0], s[3], s[1], s[2]) if lay else s


def in_layout(n, c, h, w, lay: int) -> Tuple[int, int, int, int]:
    return (n, h, w, c) if lay else (n, c, h, w)


def oikk(shape, lay: int) -> Tuple[int, int, int, int]:
    """weight shape in `lay` -> (O, C/groups, KH, KW)."""
    s = tuple(int(d) for d in shape)
    return (s[3], s[2], s[0], s[1]) if lay else s


def w_in_layout(o, cg, kh, kw, lay: int) -> Tuple[int, int, int, int]:
    return (kh, kw, cg, o) if lay else (o, cg, kh, kw)


def pad_bottom_right(a: np.ndarray, eh: int, ew: int, lay: int) -> np.ndarray:
    """Zero rows/columns appended at the bottom/right of a 4-D array (no copy if none)."""
    if not (eh or ew):
        return a
    n, c, h, w = nchw(a.shape, lay)
    res = np.zeros(in_layout(n, c, h + eh, w + ew, lay), a.dtype)
    (res[:, :, :h, :w] if lay == 0 else res[:, :h, :w, :])[...] = a
    return res


def crop(a: np.ndarray, h: int, w: int, lay: int) -> np.ndarray:
    return a[:, :, :h, :w] if lay == 0 else a[:, :h, :w, :]


# --- padding and output sizes --------------------------------------------------------------------
def _same(i: int, k: int, s: int, d: int) -> Pair:
    """TensorFlow 'SAME': output ceil(i/s); the odd extra pad row goes bottom/right."""
    total = max((-(-i // s) - 1) * s + d * (k - 1) + 1 - i, 0)
    return total // 2, total - total // 2


def _sides(fn: str, name: str, v) -> Pair:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{fn}: {name} must be an int or a pair (before, after), got {v!r}")
        return to_int(fn, f"{name}[0]", v[0]), to_int(fn, f"{name}[1]", v[1])
    i = to_int(fn, name, v)
    return i, i


def _string_padding(fn: str, padding: str, allowed) -> str:
    """Padding strings are case-insensitive ('same' and TensorFlow's 'SAME')."""
    mode = padding.lower()
    if mode not in allowed:
        raise ValueError(f"{fn}: unknown padding {padding!r}; use an int, a pair or one of "
                         f"{', '.join(repr(a) for a in allowed)}")
    return mode


def conv_padding(fn: str, padding, in_hw: Pair, k_hw: Pair, stride: Pair, dil: Pair) -> Pads:
    """int, (ph, pw), ((top, bottom), (left, right)), 'valid', 'same' (TF) or 'full'."""
    if isinstance(padding, str):
        mode = _string_padding(fn, padding, ("valid", "same", "full"))
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "full":
            return (dil[0] * (k_hw[0] - 1),) * 2 + (dil[1] * (k_hw[1] - 1),) * 2
        return _same(in_hw[0], k_hw[0], stride[0], dil[0]) + _same(in_hw[1], k_hw[1], stride[1],
                                                                  dil[1])
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"{fn}: padding must be an int, a pair (ph, pw), a pair of pairs "
                             f"((top, bottom), (left, right)) or a string, got {padding!r}")
        return _sides(fn, "padding[0]", padding[0]) + _sides(fn, "padding[1]", padding[1])
    p = to_int(fn, "padding", padding)
    return p, p, p, p


def pool_padding(fn: str, padding, in_hw: Pair, k_hw: Pair, stride: Pair, dil: Pair,
                 ceil_mode: bool) -> Tuple[Pads, bool]:
    """int / pair with pad <= kernel/2 (PyTorch), or 'valid' / 'same' (TF). -> (pads, is_string)."""
    if isinstance(padding, str):
        mode = _string_padding(fn, padding, ("valid", "same"))
        if ceil_mode:
            raise ValueError(f"{fn}: ceil_mode=True cannot be combined with padding={padding!r}")
        if mode == "valid":
            return (0, 0, 0, 0), True
        return _same(in_hw[0], k_hw[0], stride[0], dil[0]) + _same(in_hw[1], k_hw[1], stride[1],
                                                                  dil[1]), True
    ph, pw = to_pair(fn, "padding", padding, 0)
    if 2 * ph > k_hw[0] or 2 * pw > k_hw[1]:
        raise ValueError(f"{fn}: padding {(ph, pw)} must be at most half of kernel_size {k_hw}")
    return (ph, ph, pw, pw), False


def out_sizes(fn: str, in_hw: Pair, k_hw: Pair, stride: Pair, pads: Pads, dil: Pair,
              ceil_mode: bool = False, what: str = "kernel size", xname: str = "x") -> Pair:
    """Output (Ho, Wo) through the core's one formula; ValueError when no window fits."""
    res = []
    for ax, i, k, s, lo, hi, d in zip("HW", in_hw, k_hw, stride, pads[::2], pads[1::2], dil):
        if i + lo + hi > _PADDED_MAX:
            raise OverflowError(f"{fn}: {xname} size along {ax} plus padding ({i} + {lo} + {hi}) "
                                f"exceeds the supported maximum 2**61-1")
        extent = d * (k - 1) + 1
        o = int(_core.output_size(i, k, s, lo, hi, d, bool(ceil_mode))) \
            if extent <= i + lo + hi else 0
        if o < 1:
            raise ValueError(f"{fn}: {what} {k} (dilation {d}: extent {extent}) along {ax} is "
                             f"larger than the padded input {i + lo + hi} (size {i} + padding "
                             f"{lo}+{hi})")
        res.append(o)
    return res[0], res[1]


def _windows_hit_input(i: int, k: int, s: int, lo: int, d: int, out: int) -> bool:
    """Does every pooling window (start o*s - lo, taps start + j*d, j < k) touch [0, i)?"""
    if (out - 1) * s - lo >= i:  # starts grow with o: the last one is the worst past the input
        return False
    if lo == 0:
        return True
    if (k - 1) * d < lo:  # the first window ends in the left padding
        return False
    if d <= i:  # the first tap >= 0 of a window starting in the padding is < d <= i
        return True
    # windows starting in the left padding: first tap >= 0 is (start mod d); periodic in o
    n = min(out, -(-lo // s), d // math.gcd(s, d))
    for o0 in range(0, n, 1 << 20):
        o = np.arange(o0, min(n, o0 + (1 << 20)), dtype=np.int64)
        if np.any((o * s - lo) % d >= i):
            return False
    return True


# --- geometries ----------------------------------------------------------------------------------
class Conv(NamedTuple):
    """A convolution x (N, C, H, W) * weight (O, C/groups, KH, KW) -> (N, O, Ho, Wo)."""
    lay: int
    n: int
    c: int
    h: int
    w: int
    o: int
    kh: int
    kw: int
    stride: Pair
    pads: Pads
    dil: Pair
    groups: int
    ho: int
    wo: int

    @property
    def core(self) -> tuple:
        return (*self.stride, *self.pads, *self.dil, self.groups, self.lay)

    @property
    def x_shape(self):
        return in_layout(self.n, self.c, self.h, self.w, self.lay)

    @property
    def w_shape(self):
        return w_in_layout(self.o, self.c // self.groups, self.kh, self.kw, self.lay)

    @property
    def out_shape(self):
        return in_layout(self.n, self.o, self.ho, self.wo, self.lay)


def _common_conv(fn, n, h, w, kh, kw, ws, stride, dilation, groups, xname, wname):
    stride, dil = to_pair(fn, "stride", stride, 1), to_pair(fn, "dilation", dilation, 1)
    groups = to_int(fn, "groups", groups, 1)
    if kh == 0 or kw == 0:
        raise ValueError(f"{fn}: {wname} has a zero-sized kernel (KH, KW)=({kh}, {kw}) "
                         f"(shape {tuple(ws)}); kernel sizes must be >= 1")
    if kh > INT_MAX or kw > INT_MAX:
        raise OverflowError(f"{fn}: kernel size ({kh}, {kw}) exceeds the supported maximum 2**31-1")
    _nonempty_plane(fn, xname, n, h, w)
    return stride, dil, groups


def conv_geometry(fn: str, xs, ws, lay: int, stride, padding, dilation, groups,
                  xname: str = "x", wname: str = "weight") -> Conv:
    n, c, h, w = nchw(xs, lay)
    o, cg, kh, kw = oikk(ws, lay)
    stride, dil, groups = _common_conv(fn, n, h, w, kh, kw, ws, stride, dilation, groups, xname,
                                       wname)
    if cg * groups != c:
        if c % groups:
            raise ValueError(f"{fn}: {xname} has {c} channels, not divisible by groups={groups}")
        raise ValueError(f"{fn}: {wname} expects {cg} input channels per group but {xname} has "
                         f"{c} channels (groups={groups})")
    if o % groups:
        raise ValueError(f"{fn}: {wname} has {o} output channels, not divisible by "
                         f"groups={groups}")
    pads = conv_padding(fn, padding, (h, w), (kh, kw), stride, dil)
    ho, wo = out_sizes(fn, (h, w), (kh, kw), stride, pads, dil, xname=xname)
    return Conv(lay, n, c, h, w, o, kh, kw, stride, pads, dil, groups, ho, wo)


def conv_transpose_geometry(fn: str, xs, ws, lay: int, stride, padding, output_padding,
                            dilation, groups) -> Tuple[Conv, Pair]:
    """The transposed convolution as the convolution it is the input-gradient of.

    Returns (conv, (eh, ew)): conv.x is the transposed output (N, C_out, Hout, Wout), conv.weight
    is `weight` (O = C_in), conv.out is x padded with eh/ew zero rows/columns at the bottom/right
    (needed when output_padding >= stride, allowed when output_padding < dilation)."""
    n, c, h, w = nchw(xs, lay)
    cin, cog, kh, kw = oikk(ws, lay)
    stride, dil, groups = _common_conv(fn, n, h, w, kh, kw, ws, stride, dilation, groups, "x",
                                       "weight")
    if cin != c:
        raise ValueError(f"{fn}: weight has {cin} input channels (weight shape {tuple(ws)}) but "
                         f"x has {c} channels")
    if c % groups:
        raise ValueError(f"{fn}: x has {c} channels, not divisible by groups={groups}")
    ext = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if isinstance(padding, str):
        mode = _string_padding(fn, padding, ("valid", "same"))
        if mode == "valid":
            pads, implied = (0, 0, 0, 0), (0, 0)
        else:  # TF conv2d_transpose 'SAME': output = input * stride
            t = [max(e - s, 0) for e, s in zip(ext, stride)]
            pads = (t[0] // 2, t[0] - t[0] // 2, t[1] // 2, t[1] - t[1] // 2)
            implied = tuple(max(s - e, 0) for e, s in zip(ext, stride))
        if to_pair(fn, "output_padding", output_padding, 0) != (0, 0):
            raise ValueError(f"{fn}: output_padding={output_padding!r} cannot be combined with "
                             f"padding={padding!r}")
        opad = implied
    else:
        pads = conv_padding(fn, padding, (h, w), (kh, kw), stride, dil)
        opad = to_pair(fn, "output_padding", output_padding, 0)
        for ax, op, s, d in zip("HW", opad, stride, dil):
            if op >= s and op >= d:
                raise ValueError(f"{fn}: output_padding {opad} along {ax} must be smaller than "
                                 f"either stride {stride} or dilation {dil}")
    size = [(i - 1) * s - lo - hi + e + op
            for i, s, lo, hi, e, op in zip((h, w), stride, pads[::2], pads[1::2], ext, opad)]
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{fn}: output size ({size[0]}, {size[1]}) would be < 1 for input "
                         f"({h}, {w}), stride {stride}, padding {pads}, dilation {dil}, "
                         f"output_padding {opad}")
    extra = (opad[0] // stride[0], opad[1] // stride[1])
    conv = Conv(lay, n, cog * groups, size[0], size[1], c, kh, kw, stride, pads, dil, groups,
                h + extra[0], w + extra[1])
    return conv, extra


class Pool(NamedTuple):
    lay: int
    n: int
    c: int
    h: int
    w: int
    k: Pair
    stride: Pair
    pads: Pads
    dil: Pair
    ho: int
    wo: int
    string_padding: bool

    @property
    def max_core(self) -> tuple:
        return (*self.k, *self.stride, *self.pads, *self.dil, self.lay)

    def avg_core(self, count_include_pad: bool, divisor_override: int) -> tuple:
        return (*self.k, *self.stride, *self.pads, count_include_pad and not self.string_padding,
                divisor_override, self.lay)

    @property
    def x_shape(self):
        return in_layout(self.n, self.c, self.h, self.w, self.lay)

    @property
    def out_shape(self):
        return in_layout(self.n, self.c, self.ho, self.wo, self.lay)


def _nonempty_plane(fn: str, xname: str, n: int, h: int, w: int) -> None:
    if n > 0 and (h == 0 or w == 0):
        raise ValueError(f"{fn}: {xname} has an empty spatial size (H, W)=({h}, {w}) with batch "
                         f"{n} > 0")


def pool_geometry(fn: str, xs, lay: int, kernel_size, stride, padding, dilation,
                  ceil_mode, xname: str = "x") -> Pool:
    n, c, h, w = nchw(xs, lay)
    k = to_pair(fn, "kernel_size", kernel_size, 1)
    stride = k if stride is None else to_pair(fn, "stride", stride, 1)
    dil = to_pair(fn, "dilation", dilation, 1)
    ceil_mode = flag(fn, "ceil_mode", ceil_mode)
    _nonempty_plane(fn, xname, n, h, w)
    pads, is_str = pool_padding(fn, padding, (h, w), k, stride, dil, ceil_mode)
    ho, wo = out_sizes(fn, (h, w), k, stride, pads, dil, ceil_mode, what="kernel_size",
                       xname=xname)
    for ax, i, kk, s, lo, d, o in zip("HW", (h, w), k, stride, pads[::2], dil, (ho, wo)):
        if not _windows_hit_input(i, kk, s, lo, d, o):
            raise ValueError(f"{fn}: a pooling window along {ax} covers only padding (input "
                             f"{i}, kernel_size {kk}, stride {s}, padding {pads}, dilation {d}); "
                             f"every window must contain at least one input element")
    return Pool(lay, n, c, h, w, k, stride, pads, dil, ho, wo, is_str)


def adaptive_geometry(fn: str, xs, lay: int, output_size, xname: str = "x") -> Pool:
    n, c, h, w = nchw(xs, lay)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{fn}: output_size must be an int or a pair (h, w), got "
                             f"{output_size!r}")
        size = tuple(i if v is None else to_int(fn, f"output_size[{j}]", v, 1)
                     for j, (v, i) in enumerate(zip(output_size, (h, w))))
    else:
        size = to_pair(fn, "output_size", output_size, 1)
    _nonempty_plane(fn, xname, n, h, w)
    if size[0] < 1 or size[1] < 1:  # a None entry kept an empty input size
        raise ValueError(f"{fn}: output_size {tuple(output_size)} keeps an empty input size "
                         f"({h}, {w})")
    return Pool(lay, n, c, h, w, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), size[0], size[1], False)
