#include "cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace fastconv {
namespace {

bool runs_on_this_cpu(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
#if defined(FASTCONV_HAVE_AVX2)
    case Isa::Avx2:
      // libgcc checks XCR0 (OS support for ymm state) as well as CPUID here.
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(FASTCONV_HAVE_AVX512)
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
#endif
#if defined(FASTCONV_HAVE_NEON)
    case Isa::Neon:
      return true;  // baseline on aarch64
#endif
    default:
      return false;
  }
}

std::atomic<int> g_active{-1};

Isa detect() {
  Isa best = Isa::Scalar;
  for (Isa isa : compiled_isas())
    if (runs_on_this_cpu(isa) && static_cast<int>(isa) > static_cast<int>(best)) best = isa;
  return best;
}

void init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    Isa level = detect();
    if (const char* env = std::getenv("FASTCONV_ISA")) {
      Isa wanted;
      // An unknown or unsupported request is ignored here (import must not fail);
      // fastconv.config() reports the level actually used.
      if (isa_from_name(env, &wanted) && runs_on_this_cpu(wanted) &&
          static_cast<int>(wanted) <= static_cast<int>(level))
        level = wanted;
    }
    g_active.store(static_cast<int>(level));
  });
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Neon: return "neon";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

bool isa_from_name(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512})
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  return false;
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> v{Isa::Scalar};
#if defined(FASTCONV_HAVE_NEON)
  v.push_back(Isa::Neon);
#endif
#if defined(FASTCONV_HAVE_AVX2)
  v.push_back(Isa::Avx2);
#endif
#if defined(FASTCONV_HAVE_AVX512)
  v.push_back(Isa::Avx512);
#endif
  return v;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa isa : compiled_isas())
    if (runs_on_this_cpu(isa)) v.push_back(isa);
  return v;
}

Isa detected_isa() {
  static const Isa d = detect();
  return d;
}

Isa active_isa() {
  init_once();
  return static_cast<Isa>(g_active.load());
}

void set_active_isa(Isa isa) {
  init_once();
  if (!runs_on_this_cpu(isa) || static_cast<int>(isa) > static_cast<int>(detected_isa()))
    throw std::invalid_argument(std::string("set_isa: '") + isa_name(isa) +
                                "' is not supported on this CPU/build (best available: '" +
                                isa_name(detected_isa()) + "'); the level can only be lowered");
  g_active.store(static_cast<int>(isa));
}

}  // namespace fastconv
