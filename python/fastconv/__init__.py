"""fastconv: fast CPU (SIMD + OpenMP) 2-D convolution and pooling for NumPy, forward and backward.

    import fastconv as fc
    y = fc.conv2d(x, w, b, stride=1, padding="same")          # NCHW, like torch.nn.functional
    y = fc.max_pool2d(x, 2, layout="NHWC")                     # or TensorFlow's NHWC

See ``fastconv.functional`` for the ops, ``fastconv.show_config()`` for the build and run-time
configuration, ``fastconv.threads(n)`` / ``fastconv.set_isa(name)`` for control.
Importing fastconv starts no threads, leaves the floating-point state alone and needs no CUDA.
"""
from __future__ import annotations

import numbers as _numbers
import os as _os
import warnings as _warnings

try:
    from . import _core
except ImportError as _e:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"fastconv: the compiled core fastconv._core could not be imported ({_e}). Build and "
        f"install it from the source tree with `pip install .` (developers: `pip install "
        f"--no-build-isolation -e . -Cbuild-dir=build/dev`); this needs a C++17 compiler, CMake "
        f">= 3.18, pybind11 and scikit-build-core. If you are running from the source checkout, "
        f"make sure the installed package, not the bare python/ folder, is imported."
    ) from _e

from . import _args, cuda
from ._config import config, show_config, version as _version
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn  # layers, loss, optimizers (pure Python over the ops; light)

__version__: str = _version()

_ISAS = ("scalar", "avx2", "avx512", "neon")


def set_num_threads(n: int) -> None:
    """Number of threads the kernels use (>= 1). Results are identical for every count."""
    _core.set_num_threads(_args.to_int("set_num_threads", "n", n, lo=1))


def get_num_threads() -> int:
    """Number of threads the kernels use (FASTCONV_NUM_THREADS / OMP_NUM_THREADS / cores)."""
    return int(_core.get_num_threads())


def get_isa() -> str:
    """The SIMD level in use: 'scalar', 'avx2', 'avx512' or 'neon'."""
    return str(_core.get_isa())


def set_isa(name: str | None = None) -> None:
    """Force a SIMD level ('scalar', 'avx2', 'avx512', 'neon'); 'auto' or None restores the best
    detected one. ValueError for unknown names and for levels this machine/build cannot run."""
    if name is None or (isinstance(name, str) and name.lower() == "auto"):
        _core.set_isa(_core.detected_isa())
        return
    if not isinstance(name, str):
        raise TypeError(f"set_isa: name must be a str or None, got {type(name).__name__} {name!r}")
    isa = name.lower()
    if isa not in _ISAS:
        raise ValueError(f"set_isa: unknown ISA {name!r}; use one of 'scalar', 'avx2', 'avx512', "
                         f"'neon' or 'auto'")
    supported = list(_core.supported_isas())
    if isa not in supported:
        raise ValueError(f"set_isa: ISA {name!r} is not supported here (detected "
                         f"{_core.detected_isa()!r}; supported: {', '.join(supported)})")
    _core.set_isa(isa)


class _Scoped:
    """Context manager: set a global on entry, restore the previous value on exit."""

    def __init__(self, get, set_, value):
        self._get, self._set, self._value = get, set_, value

    def __enter__(self):
        self._prev = self._get()
        self._set(self._value)
        return self

    def __exit__(self, *exc) -> None:
        self._set(self._prev)


def threads(n: int) -> _Scoped:
    """``with fastconv.threads(n): ...`` runs the block with n threads, then restores the count."""
    _args.to_int("threads", "n", n, lo=1)
    return _Scoped(get_num_threads, set_num_threads, n)


def set_result_cache(megabytes: float) -> None:
    """Bytes of large result buffers (>= 1 MiB each, at most 8) that fastconv keeps after the
    arrays using them die, to hand out again for results of the same size: a training loop then
    does not page-fault every output page on every call. Default 256 MiB (environment variable
    FASTCONV_RESULT_CACHE_MB at import); 0 turns the cache off and frees what it holds."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, _numbers.Real):
        raise TypeError(f"set_result_cache: megabytes must be a number, got "
                        f"{type(megabytes).__name__} {megabytes!r}")
    mb = float(megabytes)
    if not (mb >= 0 and mb < 2**43):
        raise ValueError(f"set_result_cache: megabytes must be in [0, 2**43), got {megabytes!r}")
    _core.set_result_cache_limit(int(mb * 2**20))
    _args.result_cache_on = int(mb * 2**20) > 0


def release_memory() -> None:
    """Free the result buffers fastconv keeps for reuse (see set_result_cache)."""
    _core.release_result_cache()


def _result_cache_from_env() -> None:
    v = _os.environ.get("FASTCONV_RESULT_CACHE_MB")
    if v is None or v.strip() == "":
        return
    try:
        set_result_cache(float(v))
    except (ValueError, TypeError):
        _warnings.warn(f"fastconv: ignoring FASTCONV_RESULT_CACHE_MB={v!r} (expected a number "
                      f">= 0 of megabytes)", RuntimeWarning, stacklevel=2)


_result_cache_from_env()

__all__ = list(_functional_all) + [
    "set_num_threads", "get_num_threads", "threads", "set_isa", "get_isa", "config",
    "show_config", "cuda", "set_result_cache", "release_memory", "__version__",
]
