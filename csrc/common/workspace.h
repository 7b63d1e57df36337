// Aligned scratch memory with checked sizes. Allocation failure -> std::bad_alloc (MemoryError);
// a size whose byte count overflows -> std::overflow_error (OverflowError).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/check.h"

namespace fastconv {

template <typename T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(int64_t n) { reset(n); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  ~AlignedArray() { std::free(ptr_); }

  void reset(int64_t n) {
    std::free(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    if (n <= 0) return;
    const int64_t bytes = checked_mul(n, static_cast<int64_t>(sizeof(T)), "workspace size");
    const int64_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, static_cast<size_t>(rounded));
    if (!p) throw std::bad_alloc();
    ptr_ = static_cast<T*>(p);
    size_ = n;
  }
  void zero() {
    if (ptr_) std::memset(static_cast<void*>(ptr_), 0, static_cast<size_t>(size_) * sizeof(T));
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  int64_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace fastconv
