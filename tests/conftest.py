"""Shared fixtures and helpers for the fastconv test suite.

* ``isa`` fixture: every test that uses it (directly or through
  ``pytestmark = pytest.mark.usefixtures("isa")``) runs once per instruction set that
  ``fastconv._testing.available_isas()`` reports, inside ``fastconv._testing.isa(name)``.
* ``conv_algo`` fixture: once per ``fastconv._testing.conv_algorithms()`` entry (plus "auto"),
  inside ``fastconv._testing.conv_algorithm(name)``.
* helpers: ``assert_close`` (scaled tolerance), ``assert_same`` (bitwise / NaN-aware equality),
  integer-valued and random data generators, layout converters for building test inputs.

fastconv is imported lazily here so that tests/test_reference.py (reference vs PyTorch) runs even
before the extension builds.
"""
import contextlib
import hashlib
import os
import sys

import numpy as np
import pytest

# Cap what one call may allocate, so the bad-input catalogue behaves the same on every machine:
# on a 128 GiB host a 1879048192-wide adaptive-pool output (90 GB) is a valid request that
# would be computed for minutes (or meet the OOM killer) instead of raising.
os.environ.setdefault("FASTCONV_MAX_MEMORY", "8G")

sys.path.insert(0, os.path.dirname(__file__))  # `import reference` / `from conftest import ...`

try:  # keep Hypothesis runs bounded and deterministic in CI
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "fastconv", deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastconv"))
except ImportError:  # pragma: no cover
    pass

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
DTYPES = [np.float32, np.float64]
LAYOUTS = ["NCHW", "NHWC"]


# ------------------------------------------------------------------------------------------------
# ISA / algorithm parametrisation
# ------------------------------------------------------------------------------------------------
def _fastconv_testing():
    import fastconv._testing as t  # noqa: WPS433 (lazy on purpose)
    return t


def _available_isas():
    try:
        return list(_fastconv_testing().available_isas())
    except Exception as e:  # the test modules themselves fail to import in that case
        return [f"unavailable({type(e).__name__})"]


def _conv_algorithms():
    try:
        algos = list(_fastconv_testing().conv_algorithms())
    except Exception as e:
        return [f"unavailable({type(e).__name__})"]
    return ["auto"] + [a for a in algos if a != "auto"]


def pytest_generate_tests(metafunc):
    if "isa" in metafunc.fixturenames:
        metafunc.parametrize("isa", _available_isas(), indirect=True)
    if "conv_algo" in metafunc.fixturenames:
        metafunc.parametrize("conv_algo", _conv_algorithms(), indirect=True)


@pytest.fixture
def isa(request):
    t = _fastconv_testing()
    with t.isa(request.param):
        import fastconv
        assert fastconv.config()["isa"] == request.param, "isa() did not take effect"
        yield request.param


@pytest.fixture
def conv_algo(request):
    t = _fastconv_testing()
    if request.param == "auto":
        yield "auto"
        return
    with t.conv_algorithm(request.param):
        yield request.param


@pytest.fixture
def rng(request):
    """A generator seeded from the test id: deterministic, different per test case."""
    seed = int.from_bytes(hashlib.sha256(request.node.nodeid.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def seeded_rng(*key):
    seed = int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------
# data generators
# ------------------------------------------------------------------------------------------------
def int_data(rng, shape, dtype=np.float64, lo=-3, hi=3):
    """Small integers stored as floats: every conv sum we form is exact in float32."""
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def rand_data(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def distinct_data(rng, shape, dtype=np.float64, gap=0.25):
    """All-distinct values with gaps >= `gap` (no ties: max-pool finite differences)."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2) * gap + rng.uniform(-gap / 8, gap / 8, size=n)
    return v.reshape(shape).astype(dtype)


def make_data(rng, shape, dtype, integer):
    return int_data(rng, shape, dtype) if integer else rand_data(rng, shape, dtype)


# ------------------------------------------------------------------------------------------------
# assertions
# ------------------------------------------------------------------------------------------------
def assert_close(got, ref, scale=None, dtype=None, what=""):
    """|got - ref| <= rtol * max(1, scale) elementwise; rtol 1e-5 (float32) / 1e-12 (float64).

    `scale` is the magnitude the result is built from (e.g. sum |x*w| per output element, an
    array broadcastable to ref, or a scalar); default |ref|.
    """
    got = np.asarray(got)
    ref = np.asarray(ref, dtype=np.float64)
    dt = np.dtype(dtype) if dtype is not None else got.dtype
    assert got.shape == ref.shape, f"{what} shape {got.shape} != reference {ref.shape}"
    if dtype is not None:
        assert got.dtype == dt, f"{what} dtype {got.dtype} != {dt}"
    if got.size == 0:
        return
    if scale is None:
        scale = np.abs(ref)
    tol = RTOL[dt] * np.maximum(1.0, np.asarray(scale, dtype=np.float64))
    g = got.astype(np.float64)
    nan_ok = np.isnan(g) == np.isnan(ref)
    assert nan_ok.all(), f"{what} NaN pattern differs at {np.argwhere(~nan_ok)[:5].tolist()}"
    fin = ~np.isnan(ref)
    err = np.zeros(ref.shape)
    err[fin] = np.abs(g[fin] - ref[fin])
    bad = err > tol
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        tol_b = np.broadcast_to(tol, ref.shape)
        raise AssertionError(
            f"{what} mismatch: {int(bad.sum())}/{ref.size} elements out of tolerance; first at "
            f"{where}: got {g[where]!r} ref {ref[where]!r} tol {tol_b[where]:.3g}; "
            f"max err {err.max():.3g}")


def assert_same(got, ref, what=""):
    """Exact equality (NaN == NaN), same shape.  For integer-valued data and max pooling."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what} shape {got.shape} != reference {ref.shape}"
    if got.size == 0:
        return
    if got.dtype.kind == "f" or ref.dtype.kind == "f":
        g = got.astype(np.float64)
        r = ref.astype(np.float64)
        eq = (g == r) | (np.isnan(g) & np.isnan(r))
    else:
        eq = got == ref
    if not eq.all():
        where = tuple(np.argwhere(~eq)[0])
        raise AssertionError(f"{what} differs at {int((~eq).sum())}/{ref.size} elements; "
                             f"first at {where}: got {got[where]!r} ref {ref[where]!r}")


def assert_bitwise(a, b, what=""):
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    assert a.tobytes() == b.tobytes(), f"{what}: not bitwise identical"


def check(got, ref, integer, dtype, scale=None, what=""):
    """Integer-valued data: exact.  Random data: scaled tolerance."""
    if integer:
        assert np.asarray(got).dtype == np.dtype(dtype), f"{what} dtype {got.dtype}"
        assert_same(got, ref, what)
    else:
        assert_close(got, ref, scale, dtype, what)


# ------------------------------------------------------------------------------------------------
# array shape/layout helpers
# ------------------------------------------------------------------------------------------------
def x_shape(n, c, h, w, layout):
    return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)


def w_shape(o, cg, kh, kw, layout):
    return (o, cg, kh, kw) if layout == "NCHW" else (kh, kw, cg, o)


def wt_shape(cin, coutg, kh, kw, layout):
    """Transposed-conv weight: (C_in, C_out/g, KH, KW) NCHW / (KH, KW, C_out/g, C_in) NHWC."""
    return (cin, coutg, kh, kw) if layout == "NCHW" else (kh, kw, coutg, cin)


def variants(a):
    """Views equal to `a` with unusual memory: (name, array) pairs.

    Fortran order, non-contiguous slice, negative strides, misaligned buffer, read-only, and (for
    arrays with a leading dim of 1 or repeated content) a broadcast view is built by callers.
    """
    out = [("fortran", np.asfortranarray(a))]
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    out.append(("strided", big[..., ::2]))
    rev = np.ascontiguousarray(a[..., ::-1])
    out.append(("negative-stride", rev[..., ::-1]))
    if a.ndim >= 2:
        rev2 = np.ascontiguousarray(a[::-1, ..., ::-1])
        out.append(("negative-stride-2axes", rev2[::-1, ..., ::-1]))
    buf = bytearray(a.size * a.itemsize + 1)
    mis = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    mis[...] = a
    out.append(("misaligned", mis))
    ro = a.copy()
    ro.setflags(write=False)
    out.append(("read-only", ro))
    trans = np.ascontiguousarray(np.moveaxis(a, 0, -1))
    out.append(("permuted-view", np.moveaxis(trans, -1, 0)))
    return out


@contextlib.contextmanager
def no_change(*arrays):
    """Asserts the arrays are bitwise unchanged by the block (inputs are never written)."""
    before = [np.array(a, copy=True) for a in arrays]
    yield
    for i, (a, b) in enumerate(zip(arrays, before)):
        assert_bitwise(a, b, f"argument {i} was modified")


# ------------------------------------------------------------------------------------------------
# one conv layer against the reference: every op, with a forced algorithm
# ------------------------------------------------------------------------------------------------
def conv_case(rng, xs, ws, dtype, integer, **kwargs):
    """Inputs (x, w, bias b, grad_out go), reference results (y, gx, gw, gb) and error scales
    (sum |terms|: ys, sx, sw, gbs) of one conv layer; kwargs as for reference.conv2d."""
    import reference as R
    gen = int_data if integer else rand_data
    x, wt = gen(rng, xs, dtype), gen(rng, ws, dtype)
    nout = ws[0] if kwargs.get("layout", "NCHW") == "NCHW" else ws[-1]
    b = gen(rng, (nout,), dtype)
    y = R.conv2d(x, wt, b, **kwargs)
    go = gen(rng, y.shape, dtype)
    ax, aw, ago = np.abs(x), np.abs(wt), np.abs(go)
    gx, gw, gb = R.conv2d_grads(go, x.shape, wt.shape, x=x, weight=wt, **kwargs)
    sx, sw, _ = R.conv2d_grads(ago, x.shape, wt.shape, x=ax, weight=aw, **kwargs)
    ys = R.conv2d(ax, aw, np.abs(b), **kwargs)
    gbs = R.conv2d_grads(ago, x.shape, wt.shape, **kwargs)[2]
    return dict(x=x, w=wt, b=b, go=go, y=y, gx=gx, gw=gw, gb=gb, ys=ys, sx=sx, sw=sw, gbs=gbs)


def check_result(got, ref, scale, dtype, integer, what):
    """A fastconv result of `dtype`: exact for integer data, else within the scaled tolerance."""
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), what
    if integer:
        assert_same(got, ref, what)
    else:
        assert_close(got, ref, scale, dtype, what)


def check_conv_ops(d, kw, dtype, integer, algorithm):
    """Forward (with and without bias), both gradients and the bias gradient of a conv_case
    with `algorithm` forced, against the reference; the single-gradient entry points must be
    bitwise equal to conv2d_backward."""
    import fastconv
    import fastconv._testing as FT
    with FT.conv_algorithm(algorithm):
        y = fastconv.conv2d(d["x"], d["w"], d["b"], **kw)
        y0 = fastconv.conv2d(d["x"], d["w"], **kw)
        gx, gw, gb = fastconv.conv2d_backward(d["go"], d["x"], d["w"], **kw)
        gx1 = fastconv.conv2d_input_grad(d["go"], d["w"], d["x"].shape, **kw)
        gw1 = fastconv.conv2d_weight_grad(d["go"], d["x"], d["w"].shape, **kw)
    check_result(y, d["y"], d["ys"], dtype, integer, "forward")
    bias = np.asarray(d["b"], np.float64)
    bshape = (1, -1, 1, 1) if kw.get("layout", "NCHW") == "NCHW" else (1, 1, 1, -1)
    check_result(y0, d["y"] - bias.reshape(bshape), d["ys"], dtype, integer,
                 "forward without bias")
    check_result(gx, d["gx"], d["sx"], dtype, integer, "input grad")
    check_result(gw, d["gw"], d["sw"], dtype, integer, "weight grad")
    check_result(gb, d["gb"], d["gbs"], dtype, integer, "bias grad")
    assert_bitwise(gx1, gx, "conv2d_input_grad vs conv2d_backward")
    assert_bitwise(gw1, gw, "conv2d_weight_grad vs conv2d_backward")
