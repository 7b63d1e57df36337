"""The libraries under comparison and their thread counts.

Importable without a built fastconv (``fastconv`` is then None: bench/ falls back to loading this
engine from the source tree so that the peers can still be timed).

``fastconv`` and ``torch`` are optional (None when not importable). OpenBLAS (NumPy's BLAS) is
steered through threadpoolctl when installed, otherwise through the ``*openblas_set_num_threads*``
symbol of every OpenBLAS library loaded in the process (what threadpoolctl does too).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from typing import Dict, Iterator, List, Optional

import numpy as np

try:
    import fastconv  # type: ignore
    FASTCONV_ERROR: Optional[str] = None
except ImportError as e:  # not built / not installed yet
    fastconv = None  # type: ignore
    FASTCONV_ERROR = str(e).splitlines()[0] if str(e) else type(e).__name__

try:
    import torch  # type: ignore
except ImportError:
    torch = None  # type: ignore

try:
    import threadpoolctl  # type: ignore
except ImportError:
    threadpoolctl = None  # type: ignore

OPENBLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# ---------------------------------------------------------------- OpenBLAS through ctypes
def _loaded_openblas_paths() -> List[str]:
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and "openblas" in os.path.basename(parts[-1]).lower():
                    if parts[-1] not in paths:
                        paths.append(parts[-1])
    except OSError:
        pass
    return paths


_SET = ("openblas_set_num_threads", "openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
_GET = ("openblas_get_num_threads", "openblas_get_num_threads64_",
        "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads")
_CORE = ("openblas_get_corename", "openblas_get_corename64_",
         "scipy_openblas_get_corename64_", "scipy_openblas_get_corename")
_CONF = ("openblas_get_config", "openblas_get_config64_",
         "scipy_openblas_get_config64_", "scipy_openblas_get_config")


def _symbol(lib, names):
    for n in names:
        try:
            return getattr(lib, n)
        except AttributeError:
            continue
    return None


def _openblas_libs():
    libs = []
    for p in _loaded_openblas_paths():
        try:
            libs.append(ctypes.CDLL(p, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL))
        except OSError:
            continue
    return libs


def blas_threads() -> Optional[int]:
    if threadpoolctl is not None:
        info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        return info[0]["num_threads"] if info else None
    for lib in _openblas_libs():
        f = _symbol(lib, _GET)
        if f is not None:
            f.restype = ctypes.c_int
            return int(f())
    return None


def set_blas_threads(n: int) -> bool:
    """Set NumPy's BLAS thread count; False when no way to do it was found."""
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
        return True
    done = False
    for lib in _openblas_libs():
        f = _symbol(lib, _SET)
        if f is not None:
            f.argtypes = [ctypes.c_int]
            f(int(n))
            done = True
    return done


def blas_description() -> str:
    for lib in _openblas_libs():
        conf, core = _symbol(lib, _CONF), _symbol(lib, _CORE)
        out = []
        for f in (conf, core):
            if f is not None:
                f.restype = ctypes.c_char_p
                out.append(f().decode(errors="replace").strip())
        if out:
            return " / core ".join(out)
    return "unknown (no OpenBLAS library loaded)"


# ---------------------------------------------------------------- threads of every library
def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def get_threads() -> Dict[str, Optional[int]]:
    return {
        "fastconv": fastconv.get_num_threads() if fastconv is not None else None,
        "torch": torch.get_num_threads() if torch is not None else None,
        "openblas": blas_threads(),
    }


def default_threads() -> int:
    """fastconv's thread count when importable, else torch's, else the usable cores."""
    if fastconv is not None:
        return fastconv.get_num_threads()
    if torch is not None:
        return torch.get_num_threads()
    return cpu_count()


def set_threads(n: int) -> None:
    """Give fastconv, torch and NumPy's OpenBLAS the same thread count n."""
    if fastconv is not None:
        fastconv.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    set_blas_threads(n)


@contextlib.contextmanager
def matched_threads(n: int) -> Iterator[None]:
    """``with matched_threads(n):`` every library uses n threads; the previous counts come back."""
    prev = get_threads()
    set_threads(n)
    try:
        yield
    finally:
        if fastconv is not None and prev["fastconv"]:
            fastconv.set_num_threads(prev["fastconv"])
        if torch is not None and prev["torch"]:
            torch.set_num_threads(prev["torch"])
        if prev["openblas"]:
            set_blas_threads(prev["openblas"])


# ---------------------------------------------------------------- idle OpenBLAS threads
# After each GEMM, OpenBLAS's worker threads spin for up to 2**28 cycles (~0.1 s) before they
# sleep. In a same-process, interleaved comparison that spin lands on the cores the next
# candidate runs on: measured on the 2-core machine, a 2-thread fastconv stem forward went
# 12.9 -> 17.4 ms and torch's 30 -> 65 ms right after a NumPy matmul. OpenBLAS reads its
# timeout (2**n cycles, n >= 4) from the environment once, when it loads, so the bench sets it
# before NumPy is imported (python -m fastconv re-executes itself with it; bench/conftest.py
# sets it first thing). Its own GEMM speed is unchanged (1000^3 float32 matmul 10.6 ms either
# way): only the idle spin goes.
BLAS_TIMEOUT_VARS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")
QUIET_BLAS_TIMEOUT = "4"


def blas_timeout() -> Optional[str]:
    """The OpenBLAS thread timeout set in the environment (NAME=value), or None."""
    for v in BLAS_TIMEOUT_VARS:
        if os.environ.get(v):
            return f"{v}={os.environ[v]}"
    return None


def blas_timeout_note() -> str:
    """A header line saying whether idle OpenBLAS threads sleep at once or spin."""
    t = blas_timeout()
    if t is not None:
        return (f"OpenBLAS idle threads: {t} (they stop spinning after each NumPy GEMM, so the "
                f"next candidate has the cores to itself)")
    return ("NOTE: OPENBLAS_THREAD_TIMEOUT is not set: OpenBLAS threads spin ~0.1 s after each "
            "NumPy GEMM and slow whichever candidate runs next (python -m fastconv bench sets "
            f"OPENBLAS_THREAD_TIMEOUT={QUIET_BLAS_TIMEOUT} itself)")


# ---------------------------------------------------------------- environment notes
def openblas_env_note() -> Optional[str]:
    """A note when OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (they change NumPy's GEMM)."""
    found = [f"{v}={os.environ[v]}" for v in OPENBLAS_ENV_VARS if v in os.environ]
    if not found:
        return None
    return ("NOTE: " + ", ".join(found) + " is set; it changes OpenBLAS's kernel choice/blocking "
            "and so the NumPy peer. Re-run with them unset for numbers comparable with "
            "ANCHORS.md: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastconv "
            "bench ...")


def versions() -> Dict[str, str]:
    v = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {cpu_count()} usable cores",
        "numpy": np.__version__,
        "blas": blas_description(),
    }
    if fastconv is not None:
        isa = ""
        try:
            isa = f", ISA {fastconv.get_isa()}"
        except Exception:  # pragma: no cover - older builds
            pass
        v["fastconv"] = f"{getattr(fastconv, '__version__', '?')}{isa}"
    else:
        v["fastconv"] = f"not importable ({FASTCONV_ERROR})"
    v["torch"] = torch.__version__ if torch is not None else "not installed"
    return v
