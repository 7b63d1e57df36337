"""CUDA variant: availability, devices, synchronisation.

The kernels live in the optional extension ``fastconv._core_cuda`` (built only when ``nvcc`` was
found at build time). It is imported lazily, on the first call here, so ``import fastconv`` never
needs the CUDA runtime, a driver or a GPU. None of the query functions raise.
"""
from __future__ import annotations

import numpy as np

__all__ = ["is_available", "device_count", "synchronize"]

_UNSET = object()
_mod = _UNSET
_import_error = ""


def _module():
    """fastconv._core_cuda, or None when it is not built (or fails to load)."""
    global _mod, _import_error
    if _mod is _UNSET:
        try:
            from . import _core_cuda as m
        except (ImportError, OSError) as e:
            m = None
            missing = isinstance(e, ModuleNotFoundError) or "cannot import name" in str(e)
            _import_error = "no fastconv._core_cuda module" if missing else \
                f"fastconv._core_cuda failed to load: {type(e).__name__}: {e}"
        _mod = m
    return _mod


def _device_count_or_reason():
    """(count, reason): reason says why the count is 0."""
    m = _module()
    if m is None:
        return 0, f"fastconv was built without CUDA: {_import_error}"
    try:
        n = int(m.device_count())
    except Exception as e:  # RuntimeError without a driver
        return 0, f"no usable CUDA driver: {e}"
    return n, ("" if n > 0 else "no CUDA device found")


def _status() -> str:
    """A one-line human description of the CUDA state."""
    n, reason = _device_count_or_reason()
    return f"{n} CUDA device(s)" if n > 0 else reason


def is_available() -> bool:
    """True when the CUDA kernels are built and at least one device is usable. Never raises."""
    try:
        return _device_count_or_reason()[0] > 0
    except Exception:
        return False


def device_count() -> int:
    """Number of usable CUDA devices; 0 when not built or without a driver/device."""
    try:
        return _device_count_or_reason()[0]
    except Exception:
        return 0


def synchronize() -> None:
    """Wait for all queued GPU work. RuntimeError saying why when CUDA is unavailable."""
    n, reason = _device_count_or_reason()
    if n == 0:
        raise RuntimeError(f"fastconv.cuda.synchronize: CUDA is not available: {reason}")
    sync = getattr(_module(), "synchronize", None)
    if sync is not None:
        sync()


# --- device-array detection (used by the functional ops) ----------------------------------------
_DLPACK_CUDA = (2, 13)  # kDLCUDA, kDLCUDAManaged


def _is_device_array(obj) -> bool:
    """True for objects exposing __cuda_array_interface__ or a CUDA __dlpack__ (CuPy, PyTorch CUDA
    tensors, Numba). NumPy arrays and CPU tensors are not device arrays. Never raises."""
    if obj is None or isinstance(obj, np.ndarray):
        return False
    try:
        if getattr(obj, "__cuda_array_interface__", None) is not None:
            return True
    except Exception:
        pass
    try:
        dev = obj.__dlpack_device__()
        return int(dev[0]) in _DLPACK_CUDA
    except Exception:
        return False
