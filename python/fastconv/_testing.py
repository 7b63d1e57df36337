"""Test hooks: force each SIMD level and convolution algorithm, call the GEMM kernels directly.

Not part of the public API; used by the test-suite to reach every code path on one machine.
"""
from __future__ import annotations

from . import _Scoped, _core, get_isa, set_isa

gemm = _core._testing.gemm
gemm_ukr = _core._testing.gemm_ukr
dot_ukr = _core._testing.dot_ukr
tile_sizes = _core._testing.tile_sizes

__all__ = ["available_isas", "isa", "conv_algorithms", "conv_algorithm", "gemm", "gemm_ukr",
           "dot_ukr", "tile_sizes"]


def available_isas() -> list:
    """SIMD levels this machine and build can run, lowest first."""
    return list(_core.supported_isas())


def isa(name: str) -> _Scoped:
    """``with isa("avx2"): ...`` forces a SIMD level for the block, then restores the previous."""
    return _Scoped(get_isa, set_isa, name)


def conv_algorithms() -> list:
    """Names of the convolution algorithms the selector can be forced to."""
    return list(_core._testing.conv_algorithms())


def conv_algorithm(name: str) -> _Scoped:
    """``with conv_algorithm("implicit_gemm"): ...`` forces one algorithm ('auto' to select)."""
    t = _core._testing
    return _Scoped(t.get_conv_algorithm, t.set_conv_algorithm, name)
