// Winograd F(4x4, 3x3) convolution for 3x3, stride-1, dilation-1 layers: any padding (also
// asymmetric and larger than the kernel), any groups, both layouts, float and double.
// Same contracts as conv2d.h; every function fully overwrites its output.
//
// The input gradient of such a layer is itself a stride-1 3x3 correlation (of grad_y with the
// filters rotated by 180 degrees, in/out channels swapped, padding 2 - pad per side, negative
// meaning cropping), so both directions run the same tiled driver.
//
// Extra memory of one call (transformed weights kept for the call, plus per-thread blocks of
// transformed inputs and products) is bounded by a quarter of the im2col matrix the layer
// would need, N * C * 9 * Ho * Wo elements; winograd_applicable() is false where no blocking
// fits that bound.
#pragma once
#include "common/params.h"

namespace fastconv {

// Shape rule only (3x3, stride 1, dilation 1, non-empty) plus the memory bound, for both the
// forward and the input-gradient direction of p.
bool winograd_applicable(const Conv2dParams& p);

// Both return false, without writing anything, when an operand holds a NaN or an infinity:
// the transforms mix a whole 6x6 tile, so a non-finite value would reach outputs whose
// windows never read it (inf - inf = NaN). The caller then runs another algorithm, keeping
// the library's rule that NaN/Inf reach exactly the outputs that read them.
template <typename T>
bool winograd_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias, T* y);
template <typename T>
bool winograd_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight, T* grad_x);

// A tensor seen through element strides (image, channel, row, column; the channel stride is
// applied to the global channel index): a dilation phase read or written in place.
struct WinoView {
  int64_t n = 0, c = 0, h = 0, w = 0;
};
// winograd_forward / winograd_input_grad of the layer p (dilation 1; its sizes are those of
// the views) on strided views of the input and output, without the NaN/Inf check: the caller
// checks the whole tensors first (winograd_all_finite).
template <typename T>
void winograd_forward_view(const Conv2dParams& p, const T* x, const WinoView& xv,
                           const T* weight, const T* bias, T* y, const WinoView& yv);
template <typename T>
void winograd_input_grad_view(const Conv2dParams& p, const T* grad_y, const WinoView& gyv,
                              const T* weight, T* grad_x, const WinoView& gxv);
// True when no element of a[0, n) is NaN or +-Inf (a parallel scan).
template <typename T>
bool winograd_all_finite(const T* a, int64_t n);

// The extra memory a Winograd call may use (elements): a quarter of the layer's im2col matrix,
// N * C * 9 * Ho * Wo, less an allowance for the allocator; at least ~57K elements.
int64_t winograd_memory_budget(const Conv2dParams& p);

// Weight gradient of a 3x3 stride-1 dilation-1 layer without groups (winograd_wgrad.cpp):
// G^T [sum over 4x4 output tiles of (A dy A^T) .* (B^T x B)] G, tiles summed in an order fixed
// by the shape (bitwise the same for any thread count). Applicable when a blocking fits the
// memory bound above. Same NaN/Inf rule: false (the caller reruns another algorithm, which
// overwrites dw) when the gradient holds a NaN or an infinity.
bool winograd_weight_grad_applicable(const Conv2dParams& p);
template <typename T>
bool winograd_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x, T* grad_w);

// Dilated 3x3 stride-1 layers (winograd_dilated.cpp): split into d_h * d_w phase
// sub-problems, each a dilation-1 layer run by the functions above. Applicable when every
// phase is non-degenerate and winograd_applicable(); same NaN/Inf rule (false, then the
// caller runs another algorithm and overwrites whatever was written).
bool dilated_winograd_applicable(const Conv2dParams& p);
template <typename T>
bool dilated_winograd_forward(const Conv2dParams& p, const T* x, const T* weight, const T* bias,
                              T* y);
template <typename T>
bool dilated_winograd_input_grad(const Conv2dParams& p, const T* grad_y, const T* weight,
                                 T* grad_x);
bool dilated_winograd_weight_grad_applicable(const Conv2dParams& p);  // and groups == 1
template <typename T>
bool dilated_winograd_weight_grad(const Conv2dParams& p, const T* grad_y, const T* x,
                                  T* grad_w);

}  // namespace fastconv
