// Depthwise convolution (one input channel per group, any channel multiplier M = out_cg()):
// any kernel size, stride, dilation and per-side padding, both layouts, float and double.
// SIMD kernels come from the KernelTable (kernels.h: DwKernels); this is the shared driver.
// Same contracts as conv2d.h; every function fully overwrites its output, and results are
// bitwise identical for any thread count.
#pragma once
#include "common/params.h"

namespace fastconv {

inline bool depthwise_applicable(const Conv2dParams& p) { return p.in_cg() == 1; }

template <typename T>
void depthwise_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void depthwise_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight, T* grad_x);
template <typename T>
void depthwise_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x, T* grad_w);

}  // namespace fastconv
