// Small-channel direct convolution (LeNet-like layers: few input and output channels, where
// the implicit GEMM spends its time packing a 25..150-deep im2col operand). Channels in the
// vector lanes, input pixels broadcast, no im2col packing; one block-product kernel family
// (kernels.h: SmallcArgs) serves all three ops. Same contracts as conv2d.h; every function
// fully overwrites its output, and results are bitwise identical for any thread count.
#pragma once
#include "common/params.h"
#include "cpu/conv/conv2d.h"

namespace fastconv {

// Whether the smallc driver can run this layer and op at all (groups 1, dilation 1; the
// forward pass also needs horizontal stride 1). Whether it is worth it is the selector's
// business (conv2d.cpp).
bool smallc_applicable(const Conv2dParams& p, ConvOp op);

// The few-channel rule (<= 16 input, <= 32 output channels: LeNet's layers), where smallc
// takes every op; wider layers take it for weight gradients only (conv2d.cpp).
bool smallc_few_channels(const Conv2dParams& p);

// Whether the scratch of a call (per-thread copies for up to 16 threads, weight-gradient
// partials) stays within 1/4 of the layer's im2col buffer: the selector's memory bound.
bool smallc_fits(const Conv2dParams& p, ConvOp op);

template <typename T>
void smallc_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void smallc_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight, T* grad_x);
template <typename T>
void smallc_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x, T* grad_w);

}  // namespace fastconv
