// Winograd F(4x4, 3x3) transforms for scalar (contract in kernels.h, formulas in winograd_f43.h).
#include "cpu/kernels/kernels.h"
#include "cpu/kernels/winograd_f43.h"

namespace fastconv {
namespace scalar {

FC_DEFINE_WINO(f32, float, wino_f32_lanes)
FC_DEFINE_WINO(f64, double, wino_f64_lanes)

}  // namespace scalar
}  // namespace fastconv
