"""Test hooks: force each SIMD level and convolution algorithm, call the GEMM kernels directly.

Not part of the public API; used by the test-suite to reach every code path on one machine.
"""
from __future__ import annotations

from . import _Scoped, _core, get_isa, set_isa

gemm = _core._testing.gemm
gemm_ukr = _core._testing.gemm_ukr
dot_ukr = _core._testing.dot_ukr
tile_sizes = _core._testing.tile_sizes
rows_tile = _core._testing.rows_tile

__all__ = ["available_isas", "isa", "conv_algorithms", "conv_algorithm", "gemm", "gemm_ukr",
           "dot_ukr", "tile_sizes", "rows_tile", "uarch_tuning",
           "split_512_datapath"]


def available_isas() -> list:
    """SIMD levels this machine and build can run, lowest first."""
    return list(_core.supported_isas())


def isa(name: str) -> _Scoped:
    """``with isa("avx2"): ...`` forces a SIMD level for the block, then restores the previous."""
    return _Scoped(get_isa, set_isa, name)


def uarch_tuning(on: bool) -> _Scoped:
    """``with uarch_tuning(False): ...`` runs the block on the plain per-ISA kernel tables (on
    CPUs that split 512-bit operations, AMD Zen 4, the AVX-512 table otherwise takes some AVX2
    kernels; see ``split_512_datapath()``)."""
    t = _core._testing
    return _Scoped(t.get_uarch_tuning, t.set_uarch_tuning, bool(on))


split_512_datapath = _core._testing.split_512_datapath


def conv_algorithms() -> list:
    """Names of the convolution algorithms the selector can be forced to."""
    return list(_core._testing.conv_algorithms())


def conv_algorithm(name: str) -> _Scoped:
    """``with conv_algorithm("implicit_gemm"): ...`` forces one algorithm ('auto' to select)."""
    t = _core._testing
    return _Scoped(t.get_conv_algorithm, t.set_conv_algorithm, name)
