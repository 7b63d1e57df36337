#include "cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

bool split_512_datapath() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  const bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
  if (!amd || !__get_cpuid(1, &a, &b, &c, &d)) return false;
  unsigned family = (a >> 8) & 0xfu;
  if (family == 0xfu) family += (a >> 20) & 0xffu;
  return family == 0x19u;  // Zen 3 / Zen 4; only Zen 4 reaches the AVX-512 table
#else
  return false;
#endif
}

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
