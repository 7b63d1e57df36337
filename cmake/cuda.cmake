# Builds fastconv._core_cuda when nvcc is found (FASTCONV_CUDA=AUTO) or demanded (ON).
# The CPU module never links the CUDA runtime: `import fastconv` works without nvcc, GPU or driver.
string(TOUPPER "${FASTCONV_CUDA}" _fc_cuda)
if(_fc_cuda STREQUAL "OFF")
  message(STATUS "fastconv: CUDA module disabled (FASTCONV_CUDA=OFF)")
  return()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(_fc_cuda STREQUAL "ON")
    message(FATAL_ERROR "fastconv: FASTCONV_CUDA=ON but no CUDA compiler (nvcc) was found. "
                        "Put nvcc on PATH or set CMAKE_CUDA_COMPILER, or use FASTCONV_CUDA=AUTO/OFF.")
  endif()
  message(STATUS "fastconv: nvcc not found; building the CPU module only")
  return()
endif()

# Default architectures: there is no GPU at build time, so never "native". CUDA 13 supports
# sm_75 and newer: Turing (75), Ampere (80, 86), Ada (89), Hopper (90) as SASS, plus PTX for the
# newest so later GPUs can JIT. Override with -DCMAKE_CUDA_ARCHITECTURES=... .
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 75-real 80-real 86-real 89-real 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

pybind11_add_module(_core_cuda MODULE csrc/cuda/module_cuda.cpp)
target_include_directories(_core_cuda PRIVATE csrc)
target_link_libraries(_core_cuda PRIVATE CUDA::cudart_static)
string(REPLACE ";" "," _fc_arch_list "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(_core_cuda PRIVATE
  FASTCONV_CUDA_ARCHS="${_fc_arch_list}"
  FASTCONV_CUDA_VERSION="${CMAKE_CUDA_COMPILER_VERSION}")
install(TARGETS _core_cuda LIBRARY DESTINATION fastconv)
message(STATUS "fastconv: building _core_cuda for ${CMAKE_CUDA_ARCHITECTURES}")
