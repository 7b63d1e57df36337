// Pooling row kernels (float32): the contract every SIMD ISA implements (csrc/cpu/kernels/<isa>/
// pool_f32.cpp, all generated from pool_simd.h). An ISA that has none leaves the table entries
// null and the drivers (csrc/cpu/pool/pool2d.cpp) use their portable loops. Kernels take raw
// pointers only: no allocation, no threads, no validation; every offset the caller passes is
// exact in int32 (the caller checks it). The max rule is pool2d.h's: a tap replaces the running
// maximum m when `v > m || isnan(v)`, taps visited in row-major window order.
#pragma once
#include <cstdint>

namespace fastconv {

struct PoolKernelsF32 {
  int lanes = 0;  // float lanes of one vector (0: no SIMD table)

  // NCHW max forward, n outputs of one output row whose windows lie inside the input.
  // Output k (0 <= k < n) reads taps t < ntaps at x[k*S + tap_off[t]] (S = 1 or 2, the column
  // stride) and writes out[k] and, when idx is not null, idx[k] = base + k*S + tap_off[t*] for
  // its winning tap t*. The kernel reads x[0 .. (n-1)*S + max(tap_off) + S - 1] only (the caller
  // guarantees those are readable) and returns how many leading outputs it did: all n when
  // n >= lanes (a tail is redone as one vector overlapping the previous), else 0; the caller
  // does the rest.
  int64_t (*max_nchw_s1)(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n,
                         float* out, int64_t* idx, int64_t base) = nullptr;
  int64_t (*max_nchw_s2)(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n,
                         float* out, int64_t* idx, int64_t base) = nullptr;

  // NCHW max forward in two passes for windows 3 wide 2 apart (rows shared by overlapping
  // windows are scanned once). Outputs are in blocks of lanes: block q < nb = ceil(n / lanes)
  // holds outputs q*lanes .. (the last block: n - lanes .., overlapping), in slot q of the
  // row buffers (slot-internal order is the kernels' own). n >= lanes.
  // Row pass: m[...] = the max of x[2k + j], j < 3, by the max rule in j order, jw[...] = its j;
  // reads x[0 .. 2n + 1].
  void (*max_row3s2)(const float* x, int64_t n, float* m, int32_t* jw) = nullptr;
  // Column pass: output k combines the row results of rows i < nh (m[i], jw[i]) in order by the
  // max rule; out[k] and idx[k] = base + 2k + rel[i*] + jw[i*][k] (idx may be null).
  void (*max_col3s2)(const float* const* m, const int32_t* const* jw, const int32_t* rel,
                     int64_t nh, int64_t n, float* out, int64_t* idx, int64_t base) = nullptr;
  // Both passes for a window of 3 rows whose first row's row-pass results are (m, jw): the
  // other two rows (x, x + w) get the row pass in registers, the last one's results go to
  // (m2, jw2) (windows 2 rows apart chain), and out / idx are as max_col3s2 with rel = {0, w,
  // 2w}. Reads x[0 .. 2n + 1] and x[w .. w + 2n + 1].
  void (*max_fused3s2)(const float* x, int64_t w, int64_t n, const float* m, const int32_t* jw,
                       float* m2, int32_t* jw2, float* out, int64_t* idx, int64_t base) = nullptr;

  // NCHW avg forward, the same geometry as max_nchw_s*: out[k] = (sum of its taps, added in
  // tap order to 0) / divisor. All n when n >= lanes, else 0.
  int64_t (*avg_nchw_s1)(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n,
                         float* out, float divisor) = nullptr;
  int64_t (*avg_nchw_s2)(const float* x, const int32_t* tap_off, int64_t ntaps, int64_t n,
                         float* out, float divisor) = nullptr;

  // NHWC avg forward, one output pixel: out[c] = (sum of x[tap_pix[t]*C + c] over t < ntaps,
  // added in that order to +0) / divisor, for every channel when C >= lanes (returns C), else
  // does nothing and returns 0.
  int64_t (*avg_nhwc)(const float* x, const int64_t* tap_pix, int64_t ntaps, int64_t C,
                      float* out, float divisor) = nullptr;

  // NHWC max forward, one output pixel: channels c < C of taps t < ntaps at
  // x[tap_pix[t]*C + c] (tap_pix: pixel offsets from x, t = 0 first), flat plane index
  // base + tap_rel[t]. Writes out[c], idx[c] (idx may be null) for every channel when
  // C >= lanes and returns C (else does nothing and returns 0).
  int64_t (*max_nhwc)(const float* x, const int64_t* tap_pix, const int32_t* tap_rel,
                      int64_t ntaps, int64_t C, float* out, int64_t* idx, int64_t base) = nullptr;

  // Max backward where windows never overlap, as a gather: every grad_x element of a window is
  // written (not accumulated): v = (index == its flat position) ? dy + 0 : +0 (dy + 0 is what
  // adding dy to a zeroed element gives). A block of outputs whose index matches none of its
  // window's taps stops the kernel: it returns that block's first output (channel) and the
  // caller finds the bad index; otherwise it returns n (C).
  //
  // NCHW, windows 2 columns wide and 2 apart: output k (k < n) has taps
  // dst[i*drs + 2k + j], flat index base + 2k + i*dhw + j, i < nh, j < 2. Returns 0 for n < 8.
  int64_t (*max_bwd_nchw_k2)(const float* dy, const int64_t* idx, int64_t n, int64_t nh,
                             int64_t dhw, float* dst, int64_t drs, int64_t base) = nullptr;
  // NHWC, one output pixel: channels c < C, taps t < ntaps at dst[tap_pix[t]*C + c], flat index
  // base + tap_rel[t]. Returns 0 when C < lanes.
  int64_t (*max_bwd_nhwc)(const float* dy, const int64_t* idx, const int64_t* tap_pix,
                          const int32_t* tap_rel, int64_t ntaps, int64_t C, float* dst,
                          int64_t base) = nullptr;

  // Max backward as a gather where windows overlap, NHWC, one grad_x pixel of flat position
  // pos: dst[c] (c < C) is the sum, from +0 in the order t < ncand, of dy[dy_off[t] + c] over
  // the candidate output pixels t whose index idx[id_off[t] + c] equals pos, +0 added for the
  // others (a sum started from +0 is never -0, so this is bitwise the sequential scatter into a
  // zeroed grad_x). idx holds the indices' low 32 bits: the caller checks every index
  // separately (a valid one is < 2^31, so the low bits decide). All C when C >= 8 (returns C),
  // else returns 0 and writes nothing.
  int64_t (*max_bwd_gather_nhwc)(const float* dy, const int32_t* idx, const int64_t* dy_off,
                                 const int64_t* id_off, int64_t ncand, int32_t pos, int64_t C,
                                 float* dst) = nullptr;

  // Max backward where windows are 3 wide and 2 apart across the row (output o's window covers
  // the padded columns q = 2o + j, j < 3), as a gather of one grad_x row from nr candidate output
  // rows r (row-major output order). dy[r], id[r]: row r's gradients and the low 32 bits of its
  // indices, C channels per output pixel (NCHW: C = 1); pixels -1 .. n + 7 of each are readable
  // and those outside [0, n) hold an id that never equals pos + q (INT32_MIN). Writes, for the
  // padded columns q < 2n + 2 (NCHW: q < 2*roundup(n + 1, 8)) and c < C, dst[q*C + c] = the sum
  // from +0, in order, over r and over the outputs o covering q (q/2 - 1 then q/2 for even q,
  // (q - 1)/2 for odd q) of (id[r][o*C + c] == pos + q ? dy[r][o*C + c] : +0): bitwise the
  // sequential scatter into a zeroed row (see max_bwd_gather_nhwc). NHWC needs C >= lanes
  // (returns false and writes nothing otherwise); NCHW always returns true.
  bool (*max_bwd_k3s2_nchw)(const float* const* dy, const int32_t* const* id, int64_t nr,
                            int32_t pos, int64_t n, float* dst) = nullptr;
  bool (*max_bwd_k3s2_nhwc)(const float* const* dy, const int32_t* const* id, int64_t nr,
                            int32_t pos, int64_t n, int64_t C, float* dst) = nullptr;

  // Narrows and checks one output row's indices: out[k] = low 32 bits of idx[k] (k < n). Returns
  // true when every idx[k] equals base + first[k] + i*dhw + j for some i < nh, j < cnt[k] (the
  // caller guarantees every such position is below 2^31), else false (the caller finds the bad
  // one; out is then unspecified).
  bool (*narrow_check)(const int64_t* idx, int64_t n, const int32_t* first, const int32_t* cnt,
                       int32_t base, int64_t nh, int32_t dhw, int32_t* out) = nullptr;

  // Max backward index check of one output row, k < n: is idx[k] one of base + first[k] +
  // i*dhw + j (i < nh, j < cnt[k]), in unsigned 64-bit arithmetic? Returns n when all are, else
  // the first output of the first vector block holding one that is not (the caller finds it).
  int64_t (*check_row)(const int64_t* idx, int64_t n, const int64_t* first, const int64_t* cnt,
                       int64_t base, int64_t nh, int64_t dhw) = nullptr;

  // The same for n indices sharing one window (an NHWC pixel): first tap base, cnt columns.
  // Returns the first output of the first bad vector block, or where the whole blocks end (the
  // caller checks from there).
  int64_t (*check_run)(const int64_t* idx, int64_t n, int64_t base, int64_t cnt, int64_t nh,
                       int64_t dhw) = nullptr;

  // dst[0, n) = src[0, n) with non-temporal stores where dst is vector-aligned (all of them).
  void (*stream_copy)(const float* src, int64_t n, float* dst) = nullptr;
  // The same, and src[0, n) = +0 afterwards (a scratch buffer left ready for its next use).
  void (*stream_move)(float* src, int64_t n, float* dst) = nullptr;

  // dst[2i] = dst[2i + 1] = src[i], i < n (all of them).
  void (*dup2)(const float* src, int64_t n, float* dst) = nullptr;

  // Global average, NCHW: out[p] = s / dh / dw for the n planes p of hw >= 1 elements at
  // x + p*hw, s the plane's sum in this fixed order: 8 partial sums s_j (j < 8) over the elements
  // e = j (mod 8) in increasing e, each from +0, then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) +
  // (s6 + s7)). Does all n planes.
  void (*global_avg_nchw)(const float* x, int64_t hw, int64_t n, float* out, float dh,
                          float dw) = nullptr;
  // Global average, NHWC: out[c] = (x[c] + x[C + c] + ... + x[(hw-1)*C + c], added in that order
  // to +0) / dh / dw, c < C. Does all C channels when C >= lanes and returns C, else returns 0.
  int64_t (*global_avg_nhwc)(const float* x, int64_t hw, int64_t C, float* out, float dh,
                             float dw) = nullptr;
};

namespace avx2 {
void fill_pool_kernels_f32(PoolKernelsF32& k);
}
namespace avx512 {
void fill_pool_kernels_f32(PoolKernelsF32& k);
}

}  // namespace fastconv
