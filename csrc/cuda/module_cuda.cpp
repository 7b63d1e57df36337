// fastconv._core_cuda: built only when nvcc is found. Linked against the static CUDA runtime, so
// it imports on machines without a driver; every query then reports why no device is usable.
// (The CUDA kernels themselves are a later milestone; this module answers availability.)
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace {

[[noreturn]] void raise_cuda(const char* what, cudaError_t err) {
  throw std::runtime_error(std::string("fastconv.cuda: ") + what + " failed: " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error state
    raise_cuda("cudaGetDeviceCount", err);
  }
  return n;
}

}  // namespace

PYBIND11_MODULE(_core_cuda, m) {
  m.doc() = "fastconv CUDA runtime queries";
  m.def("device_count", &device_count,
        "Number of CUDA devices; RuntimeError with the CUDA message when no driver/device.");
  m.def("architectures", [] { return std::string(FASTCONV_CUDA_ARCHS); });
  m.def("compiler_version", [] { return std::string(FASTCONV_CUDA_VERSION); });
  m.def("runtime_version", [] {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return v;
  });
  m.def("driver_version", [] {
    int v = 0;
    const cudaError_t err = cudaDriverGetVersion(&v);
    if (err != cudaSuccess) raise_cuda("cudaDriverGetVersion", err);
    return v;  // 0 when no driver is installed
  });
  m.def("synchronize", [] {
    device_count();
    const cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) raise_cuda("cudaDeviceSynchronize", err);
  });
}
