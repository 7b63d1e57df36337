// Direct (loop) convolution: no packing, no GEMM. Chosen for depthwise-like layers (one input
// channel per group, few outputs per group) where a GEMM would be all padding, and forceable for
// every shape through _testing so the GEMM path always has an independent twin.
// Same contracts as conv2d.h; every function fully overwrites its output.
#pragma once
#include "common/params.h"

namespace fastconv {

template <typename T>
void direct_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void direct_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight, T* grad_x);
template <typename T>
void direct_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x, T* grad_w);

}  // namespace fastconv
