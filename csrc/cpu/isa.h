// Run-time instruction-set detection. Detected once; FASTCONV_ISA / set_isa can only lower it.
#pragma once
#include <string>
#include <vector>

namespace fastconv {

// Ordered: a level can stand in for every level below it on the same architecture.
enum class Isa : int { Scalar = 0, Neon = 1, Avx2 = 2, Avx512 = 3 };

const char* isa_name(Isa isa);
bool isa_from_name(const std::string& name, Isa* out);

Isa detected_isa();                  // best level this CPU (and this build) supports
Isa active_isa();                    // level kernels use now
void set_active_isa(Isa isa);        // throws std::invalid_argument if above detected_isa()
std::vector<Isa> compiled_isas();    // levels compiled into this build
std::vector<Isa> supported_isas();   // compiled levels this CPU can run (what tests may force)
// True on CPUs that execute each 512-bit operation as two 256-bit halves (AMD Zen 4: family
// 0x19 with AVX-512). There a zmm kernel does the work of two ymm ones, so kernels whose rows
// end in partial vectors keep their AVX2 versions (dispatch.cpp).
bool split_512_datapath();

}  // namespace fastconv
