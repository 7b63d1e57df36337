"""The bounded cache of large result buffers (csrc/bindings/results.cpp, fastconv.set_result_cache).

Results of >= 1 MiB are handed out from blocks that earlier results gave back. What must hold:
a reused block never shows its old contents in a result, two live results never share memory,
the cache keeps within its limit and block count, 0 turns it off, and bad settings raise.
"""
import concurrent.futures
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _core

MIB = 1 << 20


@pytest.fixture(autouse=True)
def default_cache():
    fastconv.set_result_cache(256)
    fastconv.release_memory()
    yield
    fastconv.set_result_cache(256)
    fastconv.release_memory()


def info():
    return _core.result_cache_info()


def test_large_results_come_from_the_cache_and_go_back():
    a = fastconv._args.empty((4, 64, 32, 32), np.float32)  # exactly 1 MiB
    assert a.nbytes == MIB and a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert a.base is not None
    addr = a.ctypes.data
    del a
    assert info()["blocks"] == 1 and info()["held_bytes"] == MIB
    b = fastconv._args.empty((4, 64, 32, 32), np.float32)
    assert b.ctypes.data == addr and info()["blocks"] == 0
    small = fastconv._args.empty((4, 64, 32, 31), np.float32)  # < 1 MiB: plain numpy
    assert small.base is None


def test_live_results_never_share_a_block():
    x = np.random.default_rng(0).standard_normal((4, 64, 64, 64)).astype(np.float32)
    ys = [fastconv.max_pool2d(x, 2, stride=2) for _ in range(3)]
    gs = [fastconv.avg_pool2d_backward(np.ones_like(ys[0]), x.shape, 2, stride=2)
          for _ in range(3)]
    arrays = ys + gs
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert not np.shares_memory(arrays[i], arrays[j])


def _ref_max_backward(g, x, k):
    """Slow, obvious reference for non-overlapping k x k max pooling (NCHW, stride k)."""
    n, c, h, w = x.shape
    gx = np.zeros_like(x)
    for i in range(h // k):
        for j in range(w // k):
            win = x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].reshape(n, c, -1)
            arg = np.argmax(win, axis=2)
            for a in range(n):
                for b in range(c):
                    r, s = divmod(arg[a, b], k)
                    gx[a, b, i * k + r, j * k + s] += g[a, b, i, j]
    return gx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reused_blocks_do_not_leak_old_contents(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64, 48, 48)).astype(dtype)  # grad_x: >= 1 MiB
    y, idx = fastconv.max_pool2d(x, 2, stride=2, return_indices=True)
    g = rng.standard_normal(y.shape).astype(dtype)
    ref = _ref_max_backward(g, x, 2)
    for fill in (np.nan, 7.0):
        junk = fastconv._args.empty(x.shape, dtype)
        junk.fill(fill)
        del junk  # its block goes back with `fill` in it ...
        gx = fastconv.max_pool2d_backward(g, idx, x.shape, 2, stride=2)
        np.testing.assert_array_equal(gx, ref)  # ... and every element was written anew
        del gx
    w = rng.standard_normal((64, 64, 3, 3)).astype(dtype)
    ref_y = fastconv.conv2d(x, w, padding=1)
    junk = fastconv._args.empty(ref_y.shape, dtype)
    junk.fill(np.nan)
    del junk
    np.testing.assert_array_equal(fastconv.conv2d(x, w, padding=1), ref_y)


def test_limit_and_block_count_are_kept():
    fastconv.set_result_cache(3)
    arrays = [fastconv._args.empty((MIB // 4,), np.float32) for _ in range(5)]
    del arrays
    assert info()["held_bytes"] <= 3 * MIB and info()["blocks"] == 3
    fastconv.set_result_cache(256)
    arrays = [fastconv._args.empty((MIB // 4 + i,), np.float32) for i in range(12)]
    del arrays
    assert info()["blocks"] == info()["max_blocks"] == 8
    fastconv.set_result_cache(2)  # lowering the limit frees down to it
    assert info()["held_bytes"] <= 2 * MIB
    big = fastconv._args.empty((MIB,), np.float32)  # 4 MiB > limit: freed on release
    assert big.base is not None
    del big
    assert info()["held_bytes"] <= 2 * MIB


def test_zero_turns_it_off_and_release_frees():
    a = fastconv._args.empty((MIB,), np.float32)
    del a
    assert info()["blocks"] == 1
    fastconv.release_memory()
    assert info()["blocks"] == 0 and info()["held_bytes"] == 0
    fastconv.set_result_cache(0)
    a = fastconv._args.empty((MIB,), np.float32)
    assert a.base is None  # numpy.empty, as without the cache
    a[:] = 1.0
    del a
    assert info()["blocks"] == 0 and info()["limit_bytes"] == 0


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (float("nan"), ValueError),
                                      (float("inf"), ValueError), ("8", TypeError),
                                      (True, TypeError), (None, TypeError)])
def test_bad_settings_raise(bad, exc):
    with pytest.raises(exc, match="set_result_cache"):
        fastconv.set_result_cache(bad)


def test_results_pickle_and_copy_like_plain_arrays():
    x = np.random.default_rng(2).standard_normal((2, 32, 128, 128)).astype(np.float32)
    y = fastconv.avg_pool2d(x, 1)
    assert y.nbytes >= MIB and y.base is not None
    z = pickle.loads(pickle.dumps(y))
    np.testing.assert_array_equal(z, y)
    c = y.copy()
    del y
    np.testing.assert_array_equal(c, z)


def test_concurrent_callers_get_serial_results():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 32, 64, 64)).astype(np.float32) for _ in range(8)]
    serial = [fastconv.avg_pool2d_backward(x, x.shape, 1) for x in xs]
    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            got = list(ex.map(lambda x: fastconv.avg_pool2d_backward(x, x.shape, 1), xs))
        for a, b in zip(got, serial):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value, limit, warns", [("0", 0, False), ("1.5", int(1.5 * MIB), False),
                                                 ("lots", 256 * MIB, True)])
def test_environment_variable(value, limit, warns):
    code = ("import warnings, fastconv\n"
            "print(fastconv._core.result_cache_info()['limit_bytes'])")
    env = dict(os.environ, FASTCONV_RESULT_CACHE_MB=value)
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == limit
    assert ("FASTCONV_RESULT_CACHE_MB" in r.stderr) == warns
