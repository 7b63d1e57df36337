"""Layers, a loss and optimizers on top of the fastconv kernels: train a CNN with only NumPy.

    import numpy as np
    from fastconv import nn

    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120, rng=rng), nn.ReLU(),
        nn.Linear(120, 84, rng=rng), nn.ReLU(), nn.Linear(84, 10, rng=rng))
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = nn.SGD(net, lr=0.05, momentum=0.9)
    for x, y in batches:                    # x: float32 (N, 1, 28, 28), y: int labels (N,)
        loss = loss_fn(net(x), y)           # forward caches what backward needs
        net.backward(loss_fn.backward())    # stores every parameter gradient
        opt.step()                          # updates the parameter arrays in place
    net.save("lenet.npz")                   # keys "0.weight", "0.bias", ... as torch's state_dict

Conventions (the same as ``torch.nn`` where nothing else is said):

* ``forward(x)`` (also ``layer(x)``) caches what ``backward`` needs; ``backward(grad_y)`` returns
  the gradient with respect to the input and stores the parameter gradients. Backward
  **overwrites** the stored gradients (PyTorch accumulates them); ``zero_grad()`` sets them to
  zero. A layer therefore cannot be used twice in one forward pass (no weight sharing): its cache
  and gradients hold only the last use.
* ``params()`` yields ``(name, array, grad)``; names of nested modules are prefixed like PyTorch's
  ``state_dict`` keys (``"0.weight"``, ``"conv1.bias"``). The arrays are the live parameters and
  gradient buffers: optimizers keep references to them and update them in place, and assigning
  ``layer.weight = a`` copies ``a`` into the existing array.
* ``train()`` / ``eval()`` (only ``Dropout`` behaves differently); ``state_dict()`` returns copies,
  ``load_state_dict(d)`` copies into the live arrays; ``save(path)`` / ``load(path)`` use
  ``np.savez`` (``.npz``).
* Weights are initialised like PyTorch's defaults (``kaiming_uniform_(a=sqrt(5))``, i.e.
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight and the bias) from ``rng``: a
  ``numpy.random.Generator``, an int seed, or None (``default_rng()``). The weight is drawn in
  PyTorch's (NCHW) order, then transposed for ``layout="NHWC"``, so one seed gives the same
  layer in both layouts.
* Layouts: ``"NCHW"`` (PyTorch): Conv2d weight ``(O, C/groups, KH, KW)``, ConvTranspose2d weight
  ``(C_in, C_out/groups, KH, KW)``; ``"NHWC"`` (TensorFlow): ``(KH, KW, C/groups, O)`` and
  ``(KH, KW, C_out/groups, C_in)``. Linear weight ``(out_features, in_features)`` as PyTorch.
  ``Flatten`` flattens in the order of the array it gets (NHWC order for NHWC nets).
* Inputs must be float32/float64 ``numpy.ndarray`` of the layer's dtype (no silent casting:
  TypeError). ``backward`` before ``forward`` raises RuntimeError; a gradient whose shape differs
  from the forward output's raises ValueError, one of another dtype TypeError.
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np

from . import _args as A
from . import functional as F

__all__ = [
    "Module", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "ReLU", "Flatten", "Linear", "Dropout", "Sequential",
    "SoftmaxCrossEntropy", "Optimizer", "SGD", "Adam",
]

_FLOATS = (np.float32, np.float64)


# --- helpers -----------------------------------------------------------------------------------
def _make_rng(who, rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{who}: rng must be a numpy.random.Generator, an int seed or None, "
                    f"got {type(rng).__name__}")


def _float_dtype(who, dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype!r}") from None
    if dt.type not in _FLOATS:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dt}")
    return dt


def _pos_int(who, name, v, lo=1):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{who}: {name} must be an int, got {type(v).__name__} {v!r}")
    if v < lo:
        raise ValueError(f"{who}: {name} must be >= {lo}, got {v}")
    return int(v)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _check_input(who, x, dtype=None):
    """x: a float32/float64 ndarray (of `dtype` when given)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who}: input must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.type not in _FLOATS:
        raise TypeError(f"{who}: input has dtype {x.dtype}; only float32 and float64 are supported")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{who}: input has dtype {x.dtype} but the layer's parameters are {dtype} "
                        f"(no implicit casting; build the layer with dtype=np.{x.dtype})")
    return x


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


# --- base class --------------------------------------------------------------------------------
class Module:
    """Base class: parameters, gradient buffers, sub-modules, train/eval, (de)serialisation.

    Subclasses call ``super().__init__()``, register parameters with ``_add_param`` and
    sub-modules by attribute assignment (``self.conv1 = Conv2d(...)``), and implement
    ``forward`` and ``backward``. ``forward`` stores its cache with ``_save(out, ...)`` and
    ``backward`` retrieves it with ``_saved(grad_y)``, which checks the gradient.
    """

    def __init__(self):
        d = self.__dict__
        d["_params"] = OrderedDict()
        d["_grads"] = OrderedDict()
        d["_children"] = OrderedDict()
        d["training"] = True
        d["_cache"] = None
        d["_out_meta"] = None

    # attribute plumbing: parameters and sub-modules live in ordered dicts
    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_params", "_children"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_params")
        if params is not None and name in params:
            self._assign(name, value)
            return
        children = d.get("_children")
        if isinstance(value, Module):
            if children is None:
                raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                     f"assigning sub-modules")
            d.pop(name, None)
            children[name] = value
            return
        if children is not None and name in children:
            del children[name]
        object.__setattr__(self, name, value)

    def _add_param(self, name, array):
        a = np.ascontiguousarray(array)
        if not a.flags.writeable:
            a = a.copy()
        self._params[name] = a
        self._grads[name] = np.zeros_like(a)
        return a

    def _assign(self, name, value):
        p = self._params[name]
        value = np.asarray(value)
        if value.shape != p.shape:
            raise ValueError(f"{type(self).__name__}: {name} must have shape {p.shape}, got "
                             f"{value.shape}")
        np.copyto(p, value, casting="same_kind")

    # the forward/backward protocol
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_y):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def _save(self, out, *cache):
        self.__dict__["_cache"] = cache
        self.__dict__["_out_meta"] = (out.shape, out.dtype)
        return out

    def _saved(self, grad_y):
        """The forward cache, after checking that grad_y matches the forward output."""
        name = type(self).__name__
        if self._cache is None:
            raise RuntimeError(f"{name}.backward called before forward: run forward (or call "
                               f"the layer) on a batch first")
        shape, dtype = self._out_meta
        if not isinstance(grad_y, np.ndarray):
            raise TypeError(f"{name}.backward: grad_y must be a numpy.ndarray, got "
                            f"{type(grad_y).__name__}")
        if grad_y.shape != shape:
            raise ValueError(f"{name}.backward: grad_y has shape {grad_y.shape} but the forward "
                             f"output had shape {shape}")
        if grad_y.dtype != dtype:
            raise TypeError(f"{name}.backward: grad_y has dtype {grad_y.dtype} but the forward "
                            f"output had dtype {dtype} (no implicit casting)")
        return self._cache

    def _set_grad(self, name, g):
        if g is None:
            self._grads[name].fill(0)
        else:
            np.copyto(self._grads[name], g, casting="same_kind")

    # parameters
    def params(self, prefix=""):
        """Yields (name, parameter array, gradient array) for this module and its sub-modules."""
        for n, p in self._params.items():
            yield prefix + n, p, self._grads[n]
        for cn, c in self._children.items():
            yield from c.params(f"{prefix}{cn}.")

    def grads(self):
        """{name: gradient array} (the live buffers)."""
        return OrderedDict((n, g) for n, _, g in self.params())

    def children(self):
        return iter(self._children.values())

    def zero_grad(self):
        for _, _, g in self.params():
            g.fill(0)

    def train(self, mode=True):
        self.__dict__["training"] = bool(mode)
        for c in self._children.values():
            c.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # (de)serialisation
    def state_dict(self):
        """{name: copy of the parameter}, with PyTorch's key names."""
        return OrderedDict((n, p.copy()) for n, p, _ in self.params())

    def load_state_dict(self, state, strict=True):
        """Copies state[name] into each parameter (shapes must match; float64 <-> float32 is
        cast). strict: missing or unexpected keys raise KeyError."""
        own = OrderedDict((n, p) for n, p, _ in self.params())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for k, p in own.items():
            if k in state:
                v = np.asarray(state[k])
                if v.shape != p.shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: {k} has shape "
                                     f"{v.shape} in the state but {p.shape} in the module")
        for k, p in own.items():
            if k in state:
                np.copyto(p, np.asarray(state[k]), casting="same_kind")
        return self

    def save(self, path):
        """np.savez(path, **state_dict()) (NumPy appends .npz to a path without it)."""
        np.savez(path, **self.state_dict())

    def load(self, path, strict=True):
        """Loads parameters saved by ``save`` (or any .npz with the state_dict keys)."""
        p = os.fspath(path)
        if not os.path.exists(p) and os.path.exists(p + ".npz"):
            p = p + ".npz"
        with np.load(p, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        return self.load_state_dict(state, strict=strict)

    def num_params(self):
        return sum(p.size for _, p, _ in self.params())

    def extra_repr(self):
        return ""

    def __repr__(self):
        if not self._children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for n, c in self._children.items():
            lines.append(f"  ({n}): " + repr(c).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines)


def _layout(who, layout):
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"{who}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


# --- convolutions ------------------------------------------------------------------------------
class Conv2d(Module):
    """2-D convolution, as torch.nn.Conv2d (zero padding). padding may also be "valid", "same"
    (TensorFlow rule), "full" or ((top, bottom), (left, right)); see fastconv.conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, layout="NCHW", dtype=np.float32, rng=None):
        super().__init__()
        who = "Conv2d"
        self.in_channels = _pos_int(who, "in_channels", in_channels)
        self.out_channels = _pos_int(who, "out_channels", out_channels)
        self.groups = _pos_int(who, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        kh, kw = _pair(kernel_size)
        self.kernel_size = (_pos_int(who, "kernel_size", kh), _pos_int(who, "kernel_size", kw))
        A.to_pair(who, "stride", stride, 1)
        A.to_pair(who, "dilation", dilation, 1)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.layout = _layout(who, layout)
        self.dtype = _float_dtype(who, dtype)
        rng = _make_rng(who, rng)
        cg = in_channels // groups
        fan_in = cg * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        w = _uniform(rng, bound, (out_channels, cg, kh, kw), self.dtype)
        self._add_param("weight", w if layout == "NCHW" else w.transpose(2, 3, 1, 0))
        if bias:
            self._add_param("bias", _uniform(rng, bound, (out_channels,), self.dtype))
        else:
            self.bias = None

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, layout=self.layout)

    def forward(self, x):
        _check_input("Conv2d", x, self.dtype)
        y = F.conv2d(x, self.weight, self.bias, **self._kw())
        return self._save(y, x)

    def backward(self, grad_y):
        (x,) = self._saved(grad_y)
        gx, gw, gb = F.conv2d_backward(grad_y, x, self.weight, bias=self.bias is not None,
                                       **self._kw())
        self._set_grad("weight", gw)
        if self.bias is not None:
            self._set_grad("bias", gb)
        return gx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != 0:
            s += f", padding={self.padding!r}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.layout != "NCHW":
            s += f", layout={self.layout!r}"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        return s


class ConvTranspose2d(Module):
    """Transposed 2-D convolution, as torch.nn.ConvTranspose2d. Weight (C_in, C_out/groups, KH,
    KW) for NCHW, (KH, KW, C_out/groups, C_in) for NHWC; initialised like PyTorch (fan_in =
    C_out/groups * KH * KW, PyTorch's convention for transposed convolutions)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, layout="NCHW",
                 dtype=np.float32, rng=None):
        super().__init__()
        who = "ConvTranspose2d"
        self.in_channels = _pos_int(who, "in_channels", in_channels)
        self.out_channels = _pos_int(who, "out_channels", out_channels)
        self.groups = _pos_int(who, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{who}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        kh, kw = _pair(kernel_size)
        self.kernel_size = (_pos_int(who, "kernel_size", kh), _pos_int(who, "kernel_size", kw))
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        A.to_pair(who, "stride", stride, 1)
        A.to_pair(who, "dilation", dilation, 1)
        self.dilation = dilation
        self.layout = _layout(who, layout)
        self.dtype = _float_dtype(who, dtype)
        rng = _make_rng(who, rng)
        og = out_channels // groups
        bound = 1.0 / math.sqrt(og * kh * kw)
        w = _uniform(rng, bound, (in_channels, og, kh, kw), self.dtype)
        self._add_param("weight", w if layout == "NCHW" else w.transpose(2, 3, 1, 0))
        if bias:
            self._add_param("bias", _uniform(rng, bound, (out_channels,), self.dtype))
        else:
            self.bias = None

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, dilation=self.dilation,
                    groups=self.groups, layout=self.layout)

    def forward(self, x):
        _check_input("ConvTranspose2d", x, self.dtype)
        y = F.conv_transpose2d(x, self.weight, self.bias, **self._kw())
        return self._save(y, x)

    def backward(self, grad_y):
        (x,) = self._saved(grad_y)
        gx, gw, gb = F.conv_transpose2d_backward(grad_y, x, self.weight,
                                                 bias=self.bias is not None, **self._kw())
        self._set_grad("weight", gw)
        if self.bias is not None:
            self._set_grad("bias", gb)
        return gx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        for k, default in (("padding", 0), ("output_padding", 0), ("dilation", 1),
                           ("groups", 1)):
            if getattr(self, k) != default:
                s += f", {k}={getattr(self, k)!r}"
        if self.bias is None:
            s += ", bias=False"
        if self.layout != "NCHW":
            s += f", layout={self.layout!r}"
        return s


# --- pooling -----------------------------------------------------------------------------------
class MaxPool2d(Module):
    """Max pooling, as torch.nn.MaxPool2d (padding may also be "valid" / "same")."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 layout="NCHW"):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.layout = _layout("MaxPool2d", layout)

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    ceil_mode=self.ceil_mode, layout=self.layout)

    def forward(self, x):
        _check_input("MaxPool2d", x)
        y, idx = F.max_pool2d(x, self.kernel_size, return_indices=True, **self._kw())
        return self._save(y, x.shape, idx)

    def backward(self, grad_y):
        shape, idx = self._saved(grad_y)
        return F.max_pool2d_backward(grad_y, idx, shape, self.kernel_size, **self._kw())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling, as torch.nn.AvgPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, layout="NCHW"):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        self.layout = _layout("AvgPool2d", layout)

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override, layout=self.layout)

    def forward(self, x):
        _check_input("AvgPool2d", x)
        return self._save(F.avg_pool2d(x, self.kernel_size, **self._kw()), x.shape)

    def backward(self, grad_y):
        (shape,) = self._saved(grad_y)
        return F.avg_pool2d_backward(grad_y, shape, self.kernel_size, **self._kw())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling, as torch.nn.AdaptiveAvgPool2d (a None entry keeps that size)."""

    def __init__(self, output_size, layout="NCHW"):
        super().__init__()
        self.output_size = output_size
        self.layout = _layout("AdaptiveAvgPool2d", layout)

    def forward(self, x):
        _check_input("AdaptiveAvgPool2d", x)
        y = F.adaptive_avg_pool2d(x, self.output_size, layout=self.layout)
        return self._save(y, x.shape)

    def backward(self, grad_y):
        (shape,) = self._saved(grad_y)
        return F.adaptive_avg_pool2d_backward(grad_y, shape, layout=self.layout)

    def extra_repr(self):
        return f"output_size={self.output_size!r}"


class AdaptiveMaxPool2d(Module):
    """Adaptive max pooling, as torch.nn.AdaptiveMaxPool2d."""

    def __init__(self, output_size, layout="NCHW"):
        super().__init__()
        self.output_size = output_size
        self.layout = _layout("AdaptiveMaxPool2d", layout)

    def forward(self, x):
        _check_input("AdaptiveMaxPool2d", x)
        y, idx = F.adaptive_max_pool2d(x, self.output_size, return_indices=True,
                                       layout=self.layout)
        return self._save(y, x.shape, idx)

    def backward(self, grad_y):
        shape, idx = self._saved(grad_y)
        return F.adaptive_max_pool2d_backward(grad_y, idx, shape, layout=self.layout)

    def extra_repr(self):
        return f"output_size={self.output_size!r}"


# --- companions --------------------------------------------------------------------------------
class ReLU(Module):
    """max(x, 0); NaN propagates as in PyTorch. The gradient passes where x > 0."""

    def forward(self, x):
        _check_input("ReLU", x)
        y = np.maximum(x, 0)
        return self._save(y, y > 0)

    def backward(self, grad_y):
        (mask,) = self._saved(grad_y)
        gx = np.zeros_like(grad_y)
        np.copyto(gx, grad_y, where=mask)
        return gx


class Flatten(Module):
    """Flattens dims start_dim..end_dim (as torch.nn.Flatten), in the array's own order."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        _check_input("Flatten", x)
        nd = max(x.ndim, 1)
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        e = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= s < nd and 0 <= e < nd) or s > e:
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do "
                             f"not fit an input of shape {x.shape}")
        shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
        return self._save(x.reshape(shape), x.shape)

    def backward(self, grad_y):
        (shape,) = self._saved(grad_y)
        return grad_y.reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features), as torch.nn.Linear; x may
    have any number of leading dims."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        who = "Linear"
        self.in_features = _pos_int(who, "in_features", in_features)
        self.out_features = _pos_int(who, "out_features", out_features)
        self.dtype = _float_dtype(who, dtype)
        rng = _make_rng(who, rng)
        bound = 1.0 / math.sqrt(in_features)
        self._add_param("weight", _uniform(rng, bound, (out_features, in_features), self.dtype))
        if bias:
            self._add_param("bias", _uniform(rng, bound, (out_features,), self.dtype))
        else:
            self.bias = None

    def forward(self, x):
        _check_input("Linear", x, self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input has shape {x.shape}; its last dim must be "
                             f"in_features={self.in_features}")
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias
        return self._save(y, x)

    def backward(self, grad_y):
        (x,) = self._saved(grad_y)
        g2 = grad_y.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self._set_grad("weight", g2.T @ x2)
        if self.bias is not None:
            self._set_grad("bias", g2.sum(axis=0))
        return grad_y @ self.weight

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        return s + (", bias=False" if self.bias is None else "")


class Dropout(Module):
    """Inverted dropout: in training, zeroes each element with probability p and scales the rest
    by 1/(1-p); the identity in eval mode. The mask is drawn from rng."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.floating,
                                                                 np.integer)):
            raise TypeError(f"Dropout: p must be a float, got {type(p).__name__}")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = _make_rng("Dropout", rng)

    def forward(self, x):
        _check_input("Dropout", x)
        if not self.training or self.p == 0.0:
            return self._save(x, None)
        if self.p == 1.0:
            mask = np.zeros(x.shape, x.dtype)
        else:
            keep = self.rng.random(x.shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return self._save(x * mask, mask)

    def backward(self, grad_y):
        (mask,) = self._saved(grad_y)
        return grad_y if mask is None else grad_y * mask

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Chains layers: forward in order, backward in reverse. Sub-module names are "0", "1", ..."""

    def __init__(self, *layers):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: layers must be fastconv.nn modules, got "
                            f"{type(layer).__name__}")
        self._children[str(len(self._children))] = layer
        return self

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())

    def __getitem__(self, i):
        layers = list(self._children.values())
        if isinstance(i, slice):
            return Sequential(*layers[i])
        return layers[i]

    def forward(self, x):
        for layer in self._children.values():
            x = layer(x)
        return x

    def backward(self, grad_y):
        if not self._children:
            return grad_y
        for layer in reversed(list(self._children.values())):
            grad_y = layer.backward(grad_y)
        return grad_y


class SoftmaxCrossEntropy(Module):
    """Softmax + cross-entropy on logits (N, C) and int labels (N,), as
    torch.nn.functional.cross_entropy: ``forward(logits, targets)`` returns the mean (or, with
    reduction="sum", the summed) loss as a NumPy scalar of the logits' dtype, computed with a
    stable log-softmax; ``backward(grad=1.0)`` returns d loss / d logits."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"SoftmaxCrossEntropy: reduction must be 'mean' or 'sum', got "
                             f"{reduction!r}")
        self.reduction = reduction

    def forward(self, logits, targets):
        who = "SoftmaxCrossEntropy"
        _check_input(who, logits)
        if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
            raise ValueError(f"{who}: logits must have shape (N, C) with N, C >= 1, got "
                             f"{logits.shape}")
        n, c = logits.shape
        t = np.asarray(targets)
        if t.dtype.kind not in "iu":
            raise TypeError(f"{who}: targets must be integer class labels, got dtype {t.dtype}")
        if t.shape != (n,):
            raise ValueError(f"{who}: targets must have shape ({n},) to match logits "
                             f"{logits.shape}, got {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= c):
            raise ValueError(f"{who}: targets must be in [0, {c}), got values in "
                             f"[{t.min()}, {t.max()}]")
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(n), t]
        loss = nll.sum() if self.reduction == "sum" else nll.mean()
        self.__dict__["_cache"] = (np.exp(logp), t)
        self.__dict__["_out_meta"] = ((), logits.dtype)
        return logits.dtype.type(loss)

    def backward(self, grad=1.0):
        """d loss / d logits, times grad (the upstream gradient of the scalar loss)."""
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        probs, t = self._cache
        n = probs.shape[0]
        g = probs.copy()
        g[np.arange(n), t] -= 1
        scale = float(grad) / (n if self.reduction == "mean" else 1)
        g *= g.dtype.type(scale)
        return g

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


# --- optimizers --------------------------------------------------------------------------------
class Optimizer:
    """Holds references to (parameter, gradient) arrays and updates the parameters in place.

    params: a Module, or an iterable of (name, param, grad) triples (as Module.params() yields)
    or (param, grad) pairs.
    """

    def __init__(self, params, who):
        items = list(params.params()) if isinstance(params, Module) else list(params)
        if not items:
            raise ValueError(f"{who}: got an empty parameter list")
        self._params = []
        for i, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise TypeError(f"{who}: params must be a Module or (name, param, grad) tuples, "
                                f"got {type(item).__name__} at position {i}")
            name, p, g = item if len(item) == 3 else (str(i),) + tuple(item)
            if not (isinstance(p, np.ndarray) and isinstance(g, np.ndarray)):
                raise TypeError(f"{who}: parameter {name!r}: param and grad must be ndarrays")
            if p.shape != g.shape or p.dtype != g.dtype or p.dtype.type not in _FLOATS:
                raise ValueError(f"{who}: parameter {name!r}: param {p.shape} {p.dtype} and grad "
                                 f"{g.shape} {g.dtype} must be float arrays of one shape/dtype")
            if not p.flags.writeable:
                raise ValueError(f"{who}: parameter {name!r} is read-only")
            self._params.append((name, p, g))

    @staticmethod
    def _nonneg(who, name, v):
        if not float(v) >= 0.0:
            raise ValueError(f"{who}: {name} must be >= 0, got {v}")
        return float(v)

    def zero_grad(self):
        for _, _, g in self._params:
            g.fill(0)

    def step(self):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """torch.optim.SGD's update:
    d = grad + weight_decay * p; buf = d (first step) or momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False,
                 dampening=0.0):
        super().__init__(params, "SGD")
        self.lr = self._nonneg("SGD", "lr", lr)
        self.momentum = self._nonneg("SGD", "momentum", momentum)
        self.weight_decay = self._nonneg("SGD", "weight_decay", weight_decay)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0")
        self._bufs = [None] * len(self._params)

    def step(self):
        for i, (_, p, g) in enumerate(self._params):
            d = g
            if self.weight_decay:
                d = d + p.dtype.type(self.weight_decay) * p
            if self.momentum:
                buf = self._bufs[i]
                if buf is None:
                    buf = self._bufs[i] = np.array(d, copy=True)
                else:
                    buf *= p.dtype.type(self.momentum)
                    buf += p.dtype.type(1.0 - self.dampening) * d
                d = d + p.dtype.type(self.momentum) * buf if self.nesterov else buf
            p -= p.dtype.type(self.lr) * d


class Adam(Optimizer):
    """torch.optim.Adam's update (L2 weight_decay added to the gradient, optional amsgrad):
    m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) g^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, "Adam")
        self.lr = self._nonneg("Adam", "lr", lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.betas = (float(b1), float(b2))
        self.eps = self._nonneg("Adam", "eps", eps)
        self.weight_decay = self._nonneg("Adam", "weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self.t = 0
        self._m = [np.zeros_like(p) for _, p, _ in self._params]
        self._v = [np.zeros_like(p) for _, p, _ in self._params]
        self._vmax = [np.zeros_like(p) for _, p, _ in self._params] if amsgrad else None

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        bc1 = 1.0 - b1 ** self.t
        bc2_sqrt = math.sqrt(1.0 - b2 ** self.t)
        for i, (_, p, g) in enumerate(self._params):
            f = p.dtype.type
            if self.weight_decay:
                g = g + f(self.weight_decay) * p
            m, v = self._m[i], self._v[i]
            m += f(1.0 - b1) * (g - m)
            v *= f(b2)
            v += f(1.0 - b2) * (g * g)
            if self.amsgrad:
                np.maximum(self._vmax[i], v, out=self._vmax[i])
                v = self._vmax[i]
            denom = np.sqrt(v) / f(bc2_sqrt) + f(self.eps)
            p -= f(self.lr / bc1) * (m / denom)
