"""Thread control, and results bitwise identical for 1 vs 2 threads (BAD_INPUTS 16, 24).

Shapes are large enough that the work is actually split (N=4, C=16, 32x32)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from conftest import LAYOUTS, assert_bitwise, seeded_rng, w_shape, wt_shape, x_shape

pytestmark = pytest.mark.usefixtures("isa")  # every test under every ISA the CPU has


def test_set_get_num_threads():
    old = fastconv.get_num_threads()
    try:
        for n in (1, 2, 3, 1):
            fastconv.set_num_threads(n)
            assert fastconv.get_num_threads() == n
    finally:
        fastconv.set_num_threads(old)
    assert fastconv.get_num_threads() == old


def test_threads_context_restores():
    old = fastconv.get_num_threads()
    with fastconv.threads(1):
        assert fastconv.get_num_threads() == 1
        with fastconv.threads(2):
            assert fastconv.get_num_threads() == 2
        assert fastconv.get_num_threads() == 1
    assert fastconv.get_num_threads() == old
    with pytest.raises(RuntimeError):
        with fastconv.threads(1):
            raise RuntimeError("boom")
    assert fastconv.get_num_threads() == old


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_thread_count(bad):
    old = fastconv.get_num_threads()
    with pytest.raises(ValueError):
        fastconv.set_num_threads(bad)
    assert fastconv.get_num_threads() == old


def test_env_var_sets_threads():
    code = "import fastconv; print(fastconv.get_num_threads(), fastconv.config()['num_threads'])"
    for n in ("1", "2"):
        env = dict(os.environ, FASTCONV_NUM_THREADS=n)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [n, n]


def _both(fn):
    """fn() under 1 and under 2 threads -> (results_1, results_2) as tuples of arrays."""
    res = []
    for n in (1, 2):
        with fastconv.threads(n):
            r = fn()
        res.append(r if isinstance(r, tuple) else (r,))
    return res


def _same(fn, what):
    r1, r2 = _both(fn)
    assert len(r1) == len(r2)
    for i, (a, b) in enumerate(zip(r1, r2)):
        if a is None:
            assert b is None
            continue
        assert_bitwise(a, b, f"{what} result {i}: 1 vs 2 threads")



@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("conf", [(16, 16, 3, 1, 1, 1), (16, 24, 3, 2, "same", 1),
                                  (16, 16, 3, 1, 1, 16), (16, 32, 1, 1, 0, 1),
                                  (16, 16, 3, 1, 2, 2)],
                         ids=["3x3", "3x3s2", "depthwise", "1x1", "grouped"])
def test_conv2d_forward_backward(conf, layout, dtype):
    c, o, k, s, p, g = conf
    rng = seeded_rng("threads-conv", conf, layout)
    x = rng.standard_normal(x_shape(4, c, 32, 32, layout)).astype(dtype)
    w = rng.standard_normal(w_shape(o, c // g, k, k, layout)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    kw = dict(stride=s, padding=p, groups=g, layout=layout)
    _same(lambda: fastconv.conv2d(x, w, b, **kw), "conv2d")
    y = fastconv.conv2d(x, w, b, **kw)
    go = rng.standard_normal(y.shape).astype(dtype)
    _same(lambda: fastconv.conv2d_backward(go, x, w, **kw), "conv2d_backward")
    _same(lambda: fastconv.conv2d_input_grad(go, w, x.shape, **kw), "conv2d_input_grad")
    _same(lambda: fastconv.conv2d_weight_grad(go, x, w.shape, **kw), "conv2d_weight_grad")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_every_algorithm(conv_algo, layout):
    rng = seeded_rng("threads-algo", layout)
    x = rng.standard_normal(x_shape(4, 16, 32, 32, layout)).astype(np.float32)
    w = rng.standard_normal(w_shape(16, 16, 3, 3, layout)).astype(np.float32)
    _same(lambda: fastconv.conv2d(x, w, padding=1, layout=layout), f"conv2d[{conv_algo}]")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv_transpose2d(layout):
    rng = seeded_rng("threads-convT", layout)
    x = rng.standard_normal(x_shape(4, 16, 16, 16, layout)).astype(np.float32)
    w = rng.standard_normal(wt_shape(16, 8, 3, 3, layout)).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1, layout=layout)
    _same(lambda: fastconv.conv_transpose2d(x, w, **kw), "conv_transpose2d")
    y = fastconv.conv_transpose2d(x, w, **kw)
    go = rng.standard_normal(y.shape).astype(np.float32)
    _same(lambda: fastconv.conv_transpose2d_backward(go, x, w, **kw), "conv_transpose2d_backward")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_pools(layout, dtype):
    rng = seeded_rng("threads-pool", layout)
    x = rng.standard_normal(x_shape(4, 16, 32, 32, layout)).astype(dtype)
    for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1),
               dict(kernel_size=2), dict(kernel_size=3, stride=2, ceil_mode=True, dilation=2)):
        _same(lambda: fastconv.max_pool2d(x, return_indices=True, layout=layout, **kw),
              f"max_pool2d {kw}")
        y, idx = fastconv.max_pool2d(x, return_indices=True, layout=layout, **kw)
        go = rng.standard_normal(y.shape).astype(dtype)
        k = kw.pop("kernel_size")
        # stride 1 windows overlap: every contribution accumulates, in a fixed order
        _same(lambda: fastconv.max_pool2d_backward(go, idx, x.shape, k, layout=layout, **kw),
              f"max_pool2d_backward {kw}")
    for kw in (dict(stride=2, padding=1), dict(stride=1, padding=1, count_include_pad=False),
               dict(stride=2, ceil_mode=True, divisor_override=5)):
        _same(lambda: fastconv.avg_pool2d(x, 3, layout=layout, **kw), f"avg_pool2d {kw}")
        y = fastconv.avg_pool2d(x, 3, layout=layout, **kw)
        go = rng.standard_normal(y.shape).astype(dtype)
        _same(lambda: fastconv.avg_pool2d_backward(go, x.shape, 3, layout=layout, **kw),
              f"avg_pool2d_backward {kw}")
    _same(lambda: fastconv.adaptive_avg_pool2d(x, (5, 7), layout=layout), "adaptive_avg")
    ga = rng.standard_normal(fastconv.adaptive_avg_pool2d(x, (5, 7), layout=layout).shape)
    ga = ga.astype(dtype)
    _same(lambda: fastconv.adaptive_avg_pool2d_backward(ga, x.shape, layout=layout),
          "adaptive_avg_backward")
    _same(lambda: fastconv.adaptive_max_pool2d(x, (5, 7), return_indices=True, layout=layout),
          "adaptive_max")
    _, ai = fastconv.adaptive_max_pool2d(x, (5, 7), return_indices=True, layout=layout)
    _same(lambda: fastconv.adaptive_max_pool2d_backward(ga, ai, x.shape, layout=layout),
          "adaptive_max_backward")
    _same(lambda: fastconv.global_avg_pool2d(x, layout=layout), "global_avg")
    gg = rng.standard_normal(fastconv.global_avg_pool2d(x, layout=layout).shape).astype(dtype)
    _same(lambda: fastconv.global_avg_pool2d_backward(gg, x.shape, layout=layout),
          "global_avg_backward")


def test_concurrent_calls_while_thread_count_changes():
    """8 Python threads run convs (GIL released) while the thread count flips between 1 and 2:
    every result equals the serial one (per-thread scratch never outgrows its allocation)."""
    import threading

    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    x.flags.writeable = False
    w.flags.writeable = False
    with fastconv.threads(1):
        want_y = fastconv.conv2d(x, w, padding=1)
        want_gx = fastconv.conv2d_input_grad(want_y, w, x.shape, padding=1)
    errors, stop = [], threading.Event()

    def worker():
        try:
            for _ in range(15):
                y = fastconv.conv2d(x, w, padding=1)
                gx = fastconv.conv2d_input_grad(want_y, w, x.shape, padding=1)
                assert np.array_equal(y, want_y) and np.array_equal(gx, want_gx)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    before = fastconv.get_num_threads()
    workers = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for t in workers:
            t.start()
        n = 0
        while any(t.is_alive() for t in workers):
            fastconv.set_num_threads(1 + n % 2)
            n += 1
        for t in workers:
            t.join(60)
    finally:
        fastconv.set_num_threads(before)
    assert not errors, errors
