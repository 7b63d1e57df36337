// fastconv._core: the compiled core. Each area registers its own functions.
#include "bindings/common.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastconv compiled core (see fastconv/_core.pyi for the contract)";
  m.attr("__version__") = FASTCONV_VERSION;
  fastconv::register_info(m);
  fastconv::register_conv(m);
  fastconv::register_pool(m);
  fastconv::register_testing(m);
  fastconv::register_results(m);
}
