// 2-D pooling on the CPU, forward and backward, NCHW and NHWC, float and double.
//
// Common contract (T = float or double):
// - Every pointer is a dense C-contiguous array in the layout p.layout:
//     NCHW: x, grad_x [batch, channels, in_h, in_w]
//           out, grad_out, indices [batch, channels, out_h, out_w]
//     NHWC: x, grad_x [batch, in_h, in_w, channels]
//           out, grad_out, indices [batch, out_h, out_w, channels]
//   Outputs never overlap inputs. out_h / out_w come from the caller's output array (ceil_mode and
//   TF "same" padding are resolved there); they must equal the floor- or ceil-mode output size.
// - Semantics are PyTorch's CPU kernels. Max windows read x at rows oh*stride_h - pad_top + i*dil_h
//   (i < k_h, inside [0, in_h)), and columns likewise. Max rule, in row-major window order:
//   `if (v > max || isnan(v)) { max = v; idx = ih*in_w + iw; }` starting from max = -inf and idx =
//   the first valid element: NaN propagates (last NaN wins), ties keep the first maximum, an all
//   -inf window gives -inf and a valid in-window index. Indices are flat ih*in_w + iw into the
//   (in_h*in_w) plane for both layouts.
// - Avg: window [oh*stride_h - pad_top, min(that + k_h, in_h + pad_bottom)) clipped to the input;
//   divisor = divisor_override if nonzero, else the unclipped size (count_include_pad) or the
//   clipped size; an empty clipped window outputs 0. dil_h = dil_w = 1.
// - Adaptive: output o over input I reads [floor(o*I/O), ceil((o+1)*I/O)); avg = sum / kh / kw.
//   Only batch, channels, in_*, out_* and layout of p are used.
// - Backward functions overwrite grad_x. max / adaptive-max backward check every index (in range
//   and one of its own output's window taps) as they use it and throw std::invalid_argument
//   naming `indices` and the first bad one in array order (whatever the thread count); grad_x is
//   unspecified after that error (the Python API discards it). Overlapping windows accumulate in
//   row-major output order.
// - Invalid geometry throws std::invalid_argument ("<function>: ..."), int64 overflow
//   std::overflow_error. Results are bitwise identical for every thread count.
#pragma once
#include <cstdint>

#include "common/params.h"

namespace fastconv {

// Geometry re-checks (cheap, O(out_h + out_w)); the kernels below call them too. Bindings call
// them before releasing the GIL. `fn` prefixes the error message.
void check_pool2d_params(const char* fn, const Pool2dParams& p, bool is_max);  // max or avg pool
void check_adaptive_pool2d_params(const char* fn, const Pool2dParams& p);

template <typename T>
void max_pool2d_forward(const T* x, T* out, int64_t* indices /* nullable */, const Pool2dParams& p);
template <typename T>
void max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                         const Pool2dParams& p);

template <typename T>
void avg_pool2d_forward(const T* x, T* out, const Pool2dParams& p);
template <typename T>
void avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p);

template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* out, const Pool2dParams& p);
template <typename T>
void adaptive_avg_pool2d_backward(const T* grad_out, T* grad_x, const Pool2dParams& p);

template <typename T>
void adaptive_max_pool2d_forward(const T* x, T* out, int64_t* indices /* nullable */,
                                 const Pool2dParams& p);
template <typename T>
void adaptive_max_pool2d_backward(const T* grad_out, const int64_t* indices, T* grad_x,
                                  const Pool2dParams& p);

}  // namespace fastconv
