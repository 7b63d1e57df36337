"""The functional API: 2-D convolution and pooling on NumPy arrays, forward and backward.

Names and parameters follow ``torch.nn.functional``. Arrays are float32 or float64 (all operands
of one call share the dtype); any memory order, read-only and misaligned inputs are fine (inputs
are never written). ``layout="NCHW"`` (PyTorch) or ``"NHWC"`` (TensorFlow); a 3-D input is one
unbatched image and gives unbatched results. Results are new C-contiguous arrays.

Errors (raised before anything is written): TypeError for a non-ndarray, a dtype other than
float32/float64 or mixed dtypes; ValueError for bad values and inconsistent shapes;
OverflowError for sizes past int64 or past the physical memory; RuntimeError for CUDA arrays
while the CUDA kernels are unavailable.
"""
from __future__ import annotations

import math

import numpy as np

from . import _args as A
from . import _core

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_input_grad", "conv2d_weight_grad",
    "conv_transpose2d", "conv_transpose2d_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward", "explain_conv2d",
]


# --- shared plumbing ---------------------------------------------------------------------------
def _run(core_fn, inputs, shape, dtype, *params):
    """A new array of `shape` overwritten by core_fn(*inputs, result, *params); zeros (without a
    core call) when the result or any operand is empty."""
    if math.prod(shape) == 0 or any(a.size == 0 for a in inputs):
        return np.zeros(shape, dtype)
    res = A.empty(shape, dtype)
    core_fn(*(A.c_array(a) for a in inputs), res, *params)
    return res


def _grad_out(fn, grad_out, like, shape4, unbatched, why):
    """grad_out: float array of the forward output's shape -> its 4-D view."""
    A.float_array(fn, "grad_out", grad_out, like=like)
    A.expect_shape(fn, "grad_out", grad_out, shape4[1:] if unbatched else shape4, why)
    return grad_out[None] if unbatched else grad_out


def _input_shape(fn, input_shape):
    """-> (4-D shape, unbatched?)"""
    xs = A.shape_arg(fn, "input_shape", input_shape)
    return ((1,) + xs, True) if len(xs) == 3 else (xs, False)


def _unbatch(a, unbatched):
    return a if a is None or not unbatched else a[0]


def _add_bias(res, bias, lay):
    if bias is not None and res.size:
        res += bias.reshape((-1, 1, 1) if lay == 0 else (-1,))


def _dtype(a):
    return a.dtype.type  # native byte order for results


def _conv_f(grad_out, weight, res, *params):
    _core.conv2d_forward(grad_out, weight, None, res, *params)


# --- convolution -------------------------------------------------------------------------------
def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
           out=None):
    """2-D convolution (cross-correlation, as torch.nn.functional.conv2d).

    NCHW: x (N, C, H, W), weight (O, C/groups, KH, KW), result (N, O, Ho, Wo).
    NHWC: x (N, H, W, C), weight (KH, KW, C/groups, O), result (N, Ho, Wo, O).
    x may be 3-D (unbatched). bias: None or (O,). stride/dilation: int or pair, >= 1.
    padding: int, (ph, pw), ((top, bottom), (left, right)), "valid", "same" (TensorFlow rule:
    output ceil(in/stride), extra row/column bottom/right) or "full" (dilation*(k-1) per side).
    out: optional array of the result's exact shape and dtype, writable and not overlapping any
    input; it is filled and returned.
    """
    fn = "conv2d"
    A.no_device(fn, x=x, weight=weight, bias=bias, out=out)
    lay = A.layout(fn, layout)
    x4, unb = A.batched(fn, "x", A.float_array(fn, "x", x), lay)
    A.weight_array(fn, weight, ("x", x), lay)
    g = A.conv_geometry(fn, x4.shape, weight.shape, lay, stride, padding, dilation, groups)
    A.bias_array(fn, bias, g.o, ("x", x))
    A.check_alloc(fn, "output", g.out_shape, x.dtype)
    dest = A.Dest(fn, out, g.out_shape, _dtype(x), unb, dict(x=x, weight=weight, bias=bias))
    if dest.buf.size and x4.size:
        _core.conv2d_forward(A.c_array(x4), A.c_array(weight),
                             None if bias is None else A.c_array(bias), dest.buf, *g.core)
    elif dest.buf.size:  # C == 0: nothing to sum, the output is the bias
        dest.buf.fill(0)
        _add_bias(dest.buf, bias, lay)
    return dest.done()


_PLAN_OPS = {"forward": 0, "input_grad": 1, "weight_grad": 2}


def explain_conv2d(x_shape, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                   layout="NCHW", dtype="float32", op="forward"):
    """Which algorithm conv2d (op="forward"), its input gradient ("input_grad") or its weight
    gradient ("weight_grad") uses for these shapes, and why: returns (name, one-line reason).

    Shapes are those conv2d takes (x 3-D or 4-D in `layout`, weight 4-D); nothing is computed.
    The choice honours fastconv._testing.conv_algorithm(...) overrides and the active ISA.
    """
    fn = "explain_conv2d"
    lay = A.layout(fn, layout)
    if op not in _PLAN_OPS:
        raise ValueError(f"{fn}: op must be one of {sorted(_PLAN_OPS)}, got {op!r}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dt}")
    xs = A.shape_arg(fn, "x_shape", x_shape)
    xs = (1,) + xs if len(xs) == 3 else xs
    ws = tuple(int(v) for v in weight_shape)
    if len(ws) != 4:
        raise ValueError(f"{fn}: weight_shape must have 4 entries, got {tuple(weight_shape)}")
    g = A.conv_geometry(fn, xs, ws, lay, stride, padding, dilation, groups, xname="x_shape",
                        wname="weight_shape")
    name, reason = _core.conv2d_plan(tuple(g.x_shape), ws, *g.core, _PLAN_OPS[op],
                                     dt == np.dtype(np.float64))
    return str(name), str(reason)


def conv2d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    layout="NCHW", bias=True):
    """Gradients of conv2d: returns (grad_x, grad_weight, grad_bias or None if bias=False).

    grad_out must have exactly the shape conv2d(x, weight, ...) returns. An empty grad_out gives
    zero gradients.
    """
    fn = "conv2d_backward"
    A.no_device(fn, grad_out=grad_out, x=x, weight=weight)
    lay = A.layout(fn, layout)
    x4, unb = A.batched(fn, "x", A.float_array(fn, "x", x), lay)
    A.weight_array(fn, weight, ("x", x), lay)
    g = A.conv_geometry(fn, x4.shape, weight.shape, lay, stride, padding, dilation, groups)
    want_b = A.flag(fn, "bias", bias)
    go4 = _grad_out(fn, grad_out, ("x", x), g.out_shape, unb,
                    f"the conv2d output for x {x.shape} and weight {weight.shape}")
    dt = _dtype(x)
    gx = _run(_core.conv2d_input_grad, (go4, weight), g.x_shape, dt, *g.core)
    gw = _run(_core.conv2d_weight_grad, (go4, x4), g.w_shape, dt, *g.core)
    gb = _run(_core.conv2d_bias_grad, (go4,), (g.o,), dt, lay) if want_b else None
    return _unbatch(gx, unb), gw, gb


def conv2d_input_grad(grad_out, weight, input_shape, *, stride=1, padding=0, dilation=1,
                      groups=1, layout="NCHW"):
    """Gradient of conv2d with respect to x, for an x of shape input_shape (3 or 4 entries)."""
    fn = "conv2d_input_grad"
    A.no_device(fn, grad_out=grad_out, weight=weight)
    lay = A.layout(fn, layout)
    A.float_array(fn, "grad_out", grad_out)
    A.weight_array(fn, weight, ("grad_out", grad_out), lay)
    xs, unb = _input_shape(fn, input_shape)
    g = A.conv_geometry(fn, xs, weight.shape, lay, stride, padding, dilation, groups,
                        xname="input_shape")
    A.check_alloc(fn, "grad_x", g.x_shape, grad_out.dtype)
    go4 = _grad_out(fn, grad_out, None, g.out_shape, unb,
                    f"the conv2d output for input_shape {tuple(input_shape)} and weight "
                    f"{weight.shape}")
    gx = _run(_core.conv2d_input_grad, (go4, weight), g.x_shape, _dtype(grad_out), *g.core)
    return _unbatch(gx, unb)


def conv2d_weight_grad(grad_out, x, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                       layout="NCHW"):
    """Gradient of conv2d with respect to a weight of shape weight_shape (4 entries, in layout)."""
    fn = "conv2d_weight_grad"
    A.no_device(fn, grad_out=grad_out, x=x)
    lay = A.layout(fn, layout)
    x4, unb = A.batched(fn, "x", A.float_array(fn, "x", x), lay)
    ws = A.shape_arg(fn, "weight_shape", weight_shape, (4,))
    g = A.conv_geometry(fn, x4.shape, ws, lay, stride, padding, dilation, groups,
                        wname="weight_shape")
    A.check_alloc(fn, "grad_weight", g.w_shape, x.dtype)
    go4 = _grad_out(fn, grad_out, ("x", x), g.out_shape, unb,
                    f"the conv2d output for x {x.shape} and weight_shape {ws}")
    return _run(_core.conv2d_weight_grad, (go4, x4), g.w_shape, _dtype(x), *g.core)


def _transpose_setup(fn, x, weight, stride, padding, output_padding, dilation, groups, layout):
    lay = A.layout(fn, layout)
    x4, unb = A.batched(fn, "x", A.float_array(fn, "x", x), lay)
    A.weight_array(fn, weight, ("x", x), lay)
    g, (eh, ew) = A.conv_transpose_geometry(fn, x4.shape, weight.shape, lay, stride, padding,
                                            output_padding, dilation, groups)
    return lay, x4, unb, g, eh, ew


def conv_transpose2d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, layout="NCHW"):
    """Transposed 2-D convolution (as torch.nn.functional.conv_transpose2d).

    NCHW: x (N, C_in, H, W), weight (C_in, C_out/groups, KH, KW) (PyTorch), result
    (N, C_out, Hout, Wout). NHWC: x (N, H, W, C_in), weight (KH, KW, C_out/groups, C_in)
    (TensorFlow), result (N, Hout, Wout, C_out).
    Hout = (H-1)*stride - pad_top - pad_bottom + dilation*(KH-1) + output_padding + 1.
    padding: int, pair, ((top, bottom), (left, right)), "valid" or "same" (TensorFlow
    conv2d_transpose: Hout = H*stride). output_padding must be < stride or < dilation.
    """
    fn = "conv_transpose2d"
    A.no_device(fn, x=x, weight=weight, bias=bias)
    lay, x4, unb, g, eh, ew = _transpose_setup(fn, x, weight, stride, padding, output_padding,
                                               dilation, groups, layout)
    A.bias_array(fn, bias, g.c, ("x", x))
    A.check_alloc(fn, "output", g.x_shape, x.dtype)
    xp = A.pad_bottom_right(x4, eh, ew, lay)
    res = _run(_core.conv2d_input_grad, (xp, weight), g.x_shape, _dtype(x), *g.core)
    _add_bias(res, bias, lay)
    return _unbatch(res, unb)


def conv_transpose2d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, layout="NCHW", bias=True):
    """Gradients of conv_transpose2d: (grad_x, grad_weight, grad_bias or None if bias=False)."""
    fn = "conv_transpose2d_backward"
    A.no_device(fn, grad_out=grad_out, x=x, weight=weight)
    lay, x4, unb, g, eh, ew = _transpose_setup(fn, x, weight, stride, padding, output_padding,
                                               dilation, groups, layout)
    want_b = A.flag(fn, "bias", bias)
    go4 = _grad_out(fn, grad_out, ("x", x), g.x_shape, unb,
                    f"the conv_transpose2d output for x {x.shape} and weight {weight.shape}")
    dt = _dtype(x)
    gx = _run(_conv_f, (go4, weight), g.out_shape, dt, *g.core)
    if eh or ew:
        gx = np.ascontiguousarray(A.crop(gx, g.ho - eh, g.wo - ew, lay))
    xp = A.pad_bottom_right(x4, eh, ew, lay)
    gw = _run(_core.conv2d_weight_grad, (xp, go4), g.w_shape, dt, *g.core)
    gb = _run(_core.conv2d_bias_grad, (go4,), (g.c,), dt, lay) if want_b else None
    return _unbatch(gx, unb), gw, gb


# --- pooling -----------------------------------------------------------------------------------
def _pool_forward(fn, core_fn, x, layout, geometry, return_indices=None, is_max=False):
    """Shared by max/avg/adaptive forward: geometry(x4_shape, lay) -> (Pool, core params).
    Max ops: core_fn(x, out, indices or None, *params); avg ops: core_fn(x, out, *params)."""
    A.no_device(fn, x=x)
    lay = A.layout(fn, layout)
    x4, unb = A.batched(fn, "x", A.float_array(fn, "x", x), lay)
    p, params = geometry(x4.shape, lay)
    want_i = is_max and A.flag(fn, "return_indices", return_indices)
    A.check_alloc(fn, "output and indices" if want_i else "output", p.out_shape,
                  np.dtype(_dtype(x)).itemsize + (8 if want_i else 0))
    out = A.empty(p.out_shape, _dtype(x))
    idx = A.empty(p.out_shape, np.int64) if want_i else None
    if out.size:
        core_fn(A.c_array(x4), out, *((idx,) if is_max else ()), *params)
    return (_unbatch(out, unb), _unbatch(idx, unb)) if want_i else _unbatch(out, unb)


def _pool_backward(fn, core_fn, grad_out, indices, input_shape, layout, geometry):
    """Shared by the pooling backward ops: geometry(x4_shape, lay) -> (Pool, core params)."""
    A.no_device(fn, grad_out=grad_out, indices=indices)
    lay = A.layout(fn, layout)
    A.float_array(fn, "grad_out", grad_out)
    xs, unb = _input_shape(fn, input_shape)
    p, params = geometry(xs, lay)
    A.check_alloc(fn, "grad_x", p.x_shape, grad_out.dtype)
    go4 = _grad_out(fn, grad_out, None, p.out_shape, unb,
                    f"the {fn[:-9]} output for input_shape {tuple(input_shape)}")
    inputs = (go4,)
    if indices is not None:
        A.index_array(fn, indices, grad_out.shape)
        inputs += (indices[None] if unb else indices,)
    return _unbatch(_run(core_fn, inputs, p.x_shape, _dtype(grad_out), *params), unb)


def _max_geom(fn, kernel_size, stride, padding, dilation, ceil_mode, xname="x"):
    def geometry(xs, lay):
        p = A.pool_geometry(fn, xs, lay, kernel_size, stride, padding, dilation, ceil_mode, xname)
        return p, p.max_core
    return geometry


def _avg_geom(fn, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              xname="x"):
    def geometry(xs, lay):
        p = A.pool_geometry(fn, xs, lay, kernel_size, stride, padding, 1, ceil_mode, xname)
        cip = A.flag(fn, "count_include_pad", count_include_pad)
        return p, p.avg_core(cip, A.divisor(fn, divisor_override))
    return geometry


def max_pool2d(x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, layout="NCHW"):
    """2-D max pooling (as torch.nn.functional.max_pool2d). x (N, C, H, W) / (N, H, W, C) or 3-D.

    stride None means kernel_size. padding: int or pair, at most half the kernel (PyTorch), or
    "valid" / "same" (TensorFlow; not with ceil_mode). Padding never wins; NaN propagates.
    With return_indices, also returns int64 flat indices into each input (H*W) plane.
    """
    fn = "max_pool2d"
    return _pool_forward(fn, _core.max_pool2d_forward, x, layout,
                         _max_geom(fn, kernel_size, stride, padding, dilation, ceil_mode),
                         return_indices, is_max=True)


def max_pool2d_backward(grad_out, indices, input_shape, kernel_size, *, stride=None, padding=0,
                        dilation=1, ceil_mode=False, layout="NCHW"):
    """Gradient of max_pool2d: each grad_out element goes to the input element `indices` names.

    indices: the int64 array max_pool2d(..., return_indices=True) returned (grad_out's shape);
    indices outside their own window raise ValueError before anything is written.
    """
    fn = "max_pool2d_backward"
    return _pool_backward(fn, _core.max_pool2d_backward, grad_out, indices, input_shape, layout,
                          _max_geom(fn, kernel_size, stride, padding, dilation, ceil_mode,
                                    "input_shape"))


def avg_pool2d(x, kernel_size, *, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, layout="NCHW"):
    """2-D average pooling (as torch.nn.functional.avg_pool2d).

    count_include_pad and divisor_override (None or int >= 1) as PyTorch. With padding "valid" /
    "same" (TensorFlow rule), padded cells are never counted.
    """
    fn = "avg_pool2d"
    return _pool_forward(fn, _core.avg_pool2d_forward, x, layout,
                         _avg_geom(fn, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override))


def avg_pool2d_backward(grad_out, input_shape, kernel_size, *, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None,
                        layout="NCHW"):
    """Gradient of avg_pool2d for an input of shape input_shape (same keywords as avg_pool2d)."""
    fn = "avg_pool2d_backward"
    return _pool_backward(fn, _core.avg_pool2d_backward, grad_out, None, input_shape, layout,
                          _avg_geom(fn, kernel_size, stride, padding, ceil_mode,
                                    count_include_pad, divisor_override, "input_shape"))


def _adaptive_geom(fn, output_size, xname="x"):
    def geometry(xs, lay):
        return A.adaptive_geometry(fn, xs, lay, output_size, xname), (lay,)
    return geometry


def _adaptive_backward(fn, core_fn, grad_out, indices, input_shape, layout, output_size=None):
    """output_size None: taken from grad_out's spatial size."""
    A.no_device(fn, grad_out=grad_out, indices=indices)
    if output_size is None and isinstance(grad_out, np.ndarray) and grad_out.ndim in (3, 4):
        lay = A.layout(fn, layout)
        _, _, ho, wo = A.nchw((1,) * (grad_out.ndim == 3) + grad_out.shape, lay)
        if ho == 0 or wo == 0:
            raise ValueError(f"{fn}: grad_out has an empty spatial size (shape {grad_out.shape})")
        output_size = (ho, wo)
    return _pool_backward(fn, core_fn, grad_out, indices, input_shape, layout,
                          _adaptive_geom(fn, output_size or 1, "input_shape"))


def adaptive_avg_pool2d(x, output_size, *, layout="NCHW"):
    """Adaptive average pooling to output_size (int or pair; a None entry keeps that input size).

    Output cell o over input length I averages [floor(o*I/O), ceil((o+1)*I/O)) (PyTorch).
    """
    fn = "adaptive_avg_pool2d"
    return _pool_forward(fn, _core.adaptive_avg_pool2d_forward, x, layout,
                         _adaptive_geom(fn, output_size))


def adaptive_avg_pool2d_backward(grad_out, input_shape, *, layout="NCHW"):
    """Gradient of adaptive_avg_pool2d; the output size is grad_out's spatial size."""
    return _adaptive_backward("adaptive_avg_pool2d_backward", _core.adaptive_avg_pool2d_backward,
                              grad_out, None, input_shape, layout)


def adaptive_max_pool2d(x, output_size, *, return_indices=False, layout="NCHW"):
    """Adaptive max pooling (windows as adaptive_avg_pool2d); optionally int64 indices as
    max_pool2d returns them."""
    fn = "adaptive_max_pool2d"
    return _pool_forward(fn, _core.adaptive_max_pool2d_forward, x, layout,
                         _adaptive_geom(fn, output_size), return_indices, is_max=True)


def adaptive_max_pool2d_backward(grad_out, indices, input_shape, *, layout="NCHW"):
    """Gradient of adaptive_max_pool2d; indices as adaptive_max_pool2d returned them."""
    return _adaptive_backward("adaptive_max_pool2d_backward", _core.adaptive_max_pool2d_backward,
                              grad_out, indices, input_shape, layout)


# Global pooling is cheap enough (a ResNet head: 8x512x7x7 in ~20 us) that the general argument
# handling above (~10 us) would dominate; these fast paths accept only the plain case, read a
# few attributes, and leave everything else (including every error) to the general path. The
# core re-checks shapes either way.
_LAY = {"NCHW": 0, "NHWC": 1}


def _plain_array(a) -> bool:
    """A 4-D, non-empty, C-contiguous, aligned, native float32/float64 ndarray."""
    return (type(a) is np.ndarray and a.ndim == 4 and a.size > 0
            and a.dtype.type in (np.float32, np.float64) and a.flags.c_contiguous
            and a.flags.aligned and a.dtype.isnative)


def global_avg_pool2d(x, *, layout="NCHW"):
    """Mean over H and W, keeping them: (N, C, 1, 1) for NCHW, (N, 1, 1, C) for NHWC."""
    lay = _LAY.get(layout) if type(layout) is str else None
    if lay is not None and _plain_array(x):
        n, d1, d2, d3 = x.shape
        out = np.empty((n, d1, 1, 1) if lay == 0 else (n, 1, 1, d3), x.dtype)
        _core.adaptive_avg_pool2d_forward(x, out, lay)
        return out
    fn = "global_avg_pool2d"
    return _pool_forward(fn, _core.adaptive_avg_pool2d_forward, x, layout,
                         _adaptive_geom(fn, 1))


def global_avg_pool2d_backward(grad_out, input_shape, *, layout="NCHW"):
    """Gradient of global_avg_pool2d: grad_out (N, C, 1, 1) / (N, 1, 1, C) spread evenly."""
    lay = _LAY.get(layout) if type(layout) is str else None
    if (lay is not None and _plain_array(grad_out) and type(input_shape) is tuple
            and len(input_shape) == 4 and all(type(v) is int and 0 < v < 2**31 for v in input_shape)):
        n, c, h, w = input_shape if lay == 0 else (input_shape[0], input_shape[3],
                                                    input_shape[1], input_shape[2])
        if grad_out.shape == ((n, c, 1, 1) if lay == 0 else (n, 1, 1, c)):
            A.check_alloc("global_avg_pool2d_backward", "grad_x", input_shape, grad_out.dtype)
            gx = A.empty(input_shape, grad_out.dtype)
            _core.adaptive_avg_pool2d_backward(grad_out, gx, lay)
            return gx
    return _adaptive_backward("global_avg_pool2d_backward", _core.adaptive_avg_pool2d_backward,
                              grad_out, None, input_shape, layout, output_size=1)
