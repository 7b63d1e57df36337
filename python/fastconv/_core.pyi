"""Type stubs for the compiled core ``fastconv._core`` (C++/pybind11).

This is the contract between the Python layer and the C++ core. Every array argument must be a
C-contiguous NumPy array of exactly the dtype named (no conversion is done: a mismatch raises
TypeError). Float arrays are float32 or float64; all float arrays of one call share the dtype.
Outputs (``out``, ``grad_*``, ``indices``) are preallocated by the caller, writable, C-contiguous,
and are fully overwritten. ``layout`` is 0 for NCHW and 1 for NHWC. All arrays are 4-D, batched:
NCHW x (N, C, H, W), weight (O, C/groups, KH, KW); NHWC x (N, H, W, C), weight (KH, KW, C/groups, O).
Paddings are per side. The output spatial size is taken from the output array's shape; the core
re-checks it against the geometry and raises ValueError on any inconsistency. Python
(fastconv._args) does the user-facing validation first. The GIL is released while computing.
"""
from typing import Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

FloatArray = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
IndexArray = npt.NDArray[np.int64]

__version__: str

# --- convolution -------------------------------------------------------------------------------
def conv2d_forward(x: FloatArray, weight: FloatArray, bias: Optional[FloatArray], out: FloatArray,
                   stride_h: int, stride_w: int, pad_top: int, pad_bottom: int, pad_left: int,
                   pad_right: int, dil_h: int, dil_w: int, groups: int, layout: int) -> None: ...
def conv2d_input_grad(grad_out: FloatArray, weight: FloatArray, grad_x: FloatArray,
                      stride_h: int, stride_w: int, pad_top: int, pad_bottom: int, pad_left: int,
                      pad_right: int, dil_h: int, dil_w: int, groups: int, layout: int) -> None: ...
def conv2d_plan(x_shape: list[int], weight_shape: list[int],
                stride_h: int, stride_w: int, pad_top: int, pad_bottom: int, pad_left: int,
                pad_right: int, dil_h: int, dil_w: int, groups: int, layout: int, op: int,
                is_double: bool) -> tuple[str, str]:
    """The algorithm the selector picks for one op of a layer and a one-line reason."""
def conv2d_weight_grad(grad_out: FloatArray, x: FloatArray, grad_w: FloatArray,
                       stride_h: int, stride_w: int, pad_top: int, pad_bottom: int, pad_left: int,
                       pad_right: int, dil_h: int, dil_w: int, groups: int, layout: int) -> None: ...
def conv2d_bias_grad(grad_out: FloatArray, grad_b: FloatArray, layout: int) -> None: ...

# --- pooling -----------------------------------------------------------------------------------
def max_pool2d_forward(x: FloatArray, out: FloatArray, indices: Optional[IndexArray],
                       k_h: int, k_w: int, stride_h: int, stride_w: int, pad_top: int,
                       pad_bottom: int, pad_left: int, pad_right: int, dil_h: int, dil_w: int,
                       layout: int) -> None: ...
def max_pool2d_backward(grad_out: FloatArray, indices: IndexArray, grad_x: FloatArray,
                        k_h: int, k_w: int, stride_h: int, stride_w: int, pad_top: int,
                        pad_bottom: int, pad_left: int, pad_right: int, dil_h: int, dil_w: int,
                        layout: int) -> None:
    """Raises ValueError naming the first index (in array order) outside its own window; the
    indices are checked as they are used, so grad_x is unspecified after that error."""
def avg_pool2d_forward(x: FloatArray, out: FloatArray, k_h: int, k_w: int, stride_h: int,
                       stride_w: int, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int,
                       count_include_pad: bool, divisor_override: int, layout: int) -> None:
    """divisor_override == 0 means none."""
def avg_pool2d_backward(grad_out: FloatArray, grad_x: FloatArray, k_h: int, k_w: int,
                        stride_h: int, stride_w: int, pad_top: int, pad_bottom: int,
                        pad_left: int, pad_right: int, count_include_pad: bool,
                        divisor_override: int, layout: int) -> None: ...
def adaptive_avg_pool2d_forward(x: FloatArray, out: FloatArray, layout: int) -> None: ...
def adaptive_avg_pool2d_backward(grad_out: FloatArray, grad_x: FloatArray, layout: int) -> None: ...
def adaptive_max_pool2d_forward(x: FloatArray, out: FloatArray, indices: Optional[IndexArray],
                                layout: int) -> None: ...
def adaptive_max_pool2d_backward(grad_out: FloatArray, indices: IndexArray, grad_x: FloatArray,
                                 layout: int) -> None:
    """Raises ValueError naming the first index (in array order) outside its own window; the
    indices are checked as they are used, so grad_x is unspecified after that error."""

# --- geometry ----------------------------------------------------------------------------------
def output_size(in_size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dil: int,
                ceil_mode: bool) -> int:
    """Output length of one spatial dimension (csrc/common/params.h); may be <= 0."""

# --- threads, ISA, build info ------------------------------------------------------------------
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def get_isa() -> str: ...
def set_isa(name: str) -> None:
    """Lower (or restore) the SIMD level; ValueError for unknown or unsupported levels."""
def detected_isa() -> str: ...
def compiled_isas() -> list[str]: ...
def supported_isas() -> list[str]: ...
def build_info() -> dict[str, object]: ...

# --- result buffers (csrc/bindings/results.cpp) -----------------------------------------------
def empty_result(shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """Uninitialised C-contiguous array; >= 1 MiB ones come from the bounded result cache."""
def set_result_cache_limit(bytes: int) -> None: ...
def release_result_cache() -> None: ...
def result_cache_info() -> dict[str, int]: ...

class _testing:  # submodule fastconv._core._testing
    @staticmethod
    def gemm(a: FloatArray, b: FloatArray, c: FloatArray, accumulate: bool) -> None:
        """c (M, N) = or += a (M, K) @ b (K, N) through the packed GEMM driver and active ISA."""
    @staticmethod
    def gemm_ukr(kc: int, a: FloatArray, b: FloatArray, c: FloatArray, mr: int, nr: int,
                 accumulate: bool) -> None:
        """Calls the active microkernel once on packed panels a [kc*MR], b [kc*NR]; c (mr, nr)."""
    @staticmethod
    def dot_ukr(a: FloatArray, b: FloatArray, c: FloatArray, accumulate: bool) -> None:
        """c (mr, nr) = or += a (mr, kc) @ b (nr, kc).T through one dot-microkernel call."""
    @staticmethod
    def tile_sizes(dtype: str) -> tuple[int, int]: ...
    @staticmethod
    def rows_tile(dtype: str) -> tuple[int, int, int]:
        """(mr, nr, kc) of the active row-A microkernel for 'float32' or 'float64'."""
    @staticmethod
    def split_512_datapath() -> bool:
        """Whether this CPU runs 512-bit operations as two 256-bit halves (AMD Zen 4)."""
    @staticmethod
    def set_uarch_tuning(on: bool) -> None:
        """Turn the micro-architecture tuning of the kernel tables on (default) or off."""
    @staticmethod
    def get_uarch_tuning() -> bool: ...
    @staticmethod
    def set_conv_algorithm(name: str) -> None:
        """'auto' or one of conv_algorithms(); ValueError otherwise."""
    @staticmethod
    def get_conv_algorithm() -> str: ...
    @staticmethod
    def conv_algorithms() -> list[str]: ...
    @staticmethod
    def winograd_applicable(n: int, c: int, h: int, w: int, o: int, kh: int, kw: int, sh: int,
                            sw: int, pt: int, pb: int, pl: int, pr: int, dh: int, dw: int,
                            groups: int) -> bool:
        """Whether the Winograd path takes this layer (forward and input gradient)."""
    @staticmethod
    def winograd_weight_grad_applicable(n: int, c: int, h: int, w: int, o: int, kh: int, kw: int,
                                        sh: int, sw: int, pt: int, pb: int, pl: int, pr: int,
                                        dh: int, dw: int, groups: int) -> bool:
        """Whether the Winograd weight-gradient path takes this layer."""
