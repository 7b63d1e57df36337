// 2-D convolution on the CPU, both layouts, float and double.
//   NCHW: x [batch, in_c, in_h, in_w], weight [out_c, in_c/groups, k_h, k_w], y [batch, out_c, out_h, out_w]
//   NHWC: x [batch, in_h, in_w, in_c], weight [k_h, k_w, in_c/groups, out_c], y [batch, out_h, out_w, out_c]
// Every function fully overwrites its output. Shapes are trusted (checked by the callers).
#pragma once
#include <string>
#include <vector>

#include "common/params.h"

namespace fastconv {

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
void conv2d_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight, T* grad_x);
template <typename T>
void conv2d_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x, T* grad_w);
template <typename T>
void conv2d_bias_grad(const Conv2dParams& p, const T* grad_y, T* grad_b);

// Algorithm override for tests and benchmarks ("auto" = the selector's choice).
std::vector<std::string> conv_algorithms();
void set_conv_algorithm(const std::string& name);  // throws std::invalid_argument
std::string get_conv_algorithm();

// The algorithm the selector picks for one op of a layer, with a one-line reason.
enum class ConvOp : int { Forward = 0, InputGrad = 1, WeightGrad = 2 };
struct ConvPlan {
  std::string algorithm;
  std::string reason;
};
ConvPlan conv2d_plan(const Conv2dParams& p, ConvOp op, bool is_double);

}  // namespace fastconv
