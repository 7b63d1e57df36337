// Threads, ISA selection, build information and the shared output-size formula.
#include <pybind11/stl.h>

#include "bindings/common.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace fastconv {

void register_info(py::module_& m) {
  m.def("set_num_threads", [](int64_t n) {
    FC_CHECK(n >= 1 && n <= 4096, "set_num_threads", "n must be in [1, 4096], got ", n);
    set_num_threads(static_cast<int>(n));
  }, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("get_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("detected_isa", [] { return std::string(isa_name(detected_isa())); });
  m.def("set_isa", [](const std::string& name) {
    Isa isa;
    FC_CHECK(isa_from_name(name, &isa), "set_isa",
             "unknown ISA '", name, "' (expected one of: scalar, avx2, avx512, neon)");
    set_active_isa(isa);
  }, py::arg("name"));
  auto names = [](const std::vector<Isa>& v) {
    std::vector<std::string> out;
    for (Isa i : v) out.emplace_back(isa_name(i));
    return out;
  };
  m.def("compiled_isas", [names] { return names(compiled_isas()); });
  m.def("supported_isas", [names] { return names(supported_isas()); });
  m.def("build_info", [] {
    py::dict d;
    d["version"] = FASTCONV_VERSION;
    d["compiler"] = FASTCONV_COMPILER;
    d["openmp"] = openmp_enabled();
#ifdef NDEBUG
    d["debug"] = false;
#else
    d["debug"] = true;
#endif
    return d;
  });
  m.def("output_size",
        [](int64_t in, int64_t k, int64_t stride, int64_t lo, int64_t hi, int64_t dil, bool ceil_mode) {
          const char* fn = "output_size";
          FC_CHECK(in >= 0 && k >= 1 && stride >= 1 && lo >= 0 && hi >= 0 && dil >= 1, fn,
                   "invalid geometry");
          const int64_t limit = int64_t(1) << 61;
          FC_CHECK(in < limit && k < limit / dil && lo < limit && hi < limit && stride < limit, fn,
                   "geometry exceeds the supported range");
          return output_size(in, k, stride, lo, hi, dil, ceil_mode);
        },
        py::arg("in_size"), py::arg("k"), py::arg("stride"), py::arg("pad_lo"), py::arg("pad_hi"),
        py::arg("dil"), py::arg("ceil_mode"));
}

}  // namespace fastconv
