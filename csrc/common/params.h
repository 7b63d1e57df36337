// Parameter blocks shared by the CPU (and later CUDA) code, and the one output-size formula.
#pragma once
#include <cstdint>

namespace fastconv {

enum class Layout : int { NCHW = 0, NHWC = 1 };

// Output length of one spatial dimension:
//   floor((in + pad_lo + pad_hi - dil*(k-1) - 1) / stride) + 1
// With ceil_mode, PyTorch's rule: ceil instead of floor, but the last window must start inside
// the input or the left padding. Returns a value < 1 when no window fits (callers reject it).
inline int64_t output_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                           int64_t dil, bool ceil_mode = false) {
  const int64_t span = in + pad_lo + pad_hi - dil * (k - 1) - 1;
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_lo) --out;
  return out;
}

// Convolution geometry for one call. Sizes are per image; groups split in_c and out_c.
struct Conv2dParams {
  int64_t batch = 0, in_c = 0, in_h = 0, in_w = 0;
  int64_t out_c = 0, out_h = 0, out_w = 0;
  int64_t k_h = 0, k_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  Layout layout = Layout::NCHW;

  int64_t in_cg() const { return in_c / groups; }    // input channels per group
  int64_t out_cg() const { return out_c / groups; }  // output channels per group
  int64_t kk() const { return k_h * k_w; }
  int64_t out_plane() const { return out_h * out_w; }
  int64_t in_plane() const { return in_h * in_w; }
};

// Pooling geometry (max / avg). Output size comes from the caller (ceil_mode is resolved there).
struct Pool2dParams {
  int64_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t k_h = 1, k_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
  Layout layout = Layout::NCHW;
};

}  // namespace fastconv
