// Result buffers: large outputs come from a small, bounded cache of blocks that earlier results
// gave back, so a training loop that asks for the same shapes again does not page-fault (and
// have the kernel zero) every output page on every call. A 103 MB max-pool input gradient took
// 23 ms fresh and 13 ms in a reused buffer (Zen 3, 1 thread); the write of a fresh page costs
// the kernel's clearing of it first.
//
// An array made here owns its block through a capsule (its numpy `base`); when the array dies
// the block goes back to the cache, which keeps at most kMaxBlocks blocks and `limit` bytes
// (oldest evicted first; FASTCONV_RESULT_CACHE_MB, set_result_cache_limit, 0 turns it off)
// and hands a block out again only for the same byte size. The cache object is never destroyed
// (capsules may die after static destructors at exit); the OS reclaims it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <pybind11/stl.h>

#include "bindings/common.h"

namespace fastconv {
namespace {

constexpr size_t kMinBytes = size_t(1) << 20;    // smaller results: plain numpy.empty
constexpr size_t kHugeBytes = size_t(4) << 20;   // 2 MiB-aligned, transparent huge pages
constexpr size_t kHugeAlign = size_t(2) << 20;
constexpr size_t kPage = size_t(4) << 10;
constexpr size_t kMaxBlocks = 8;

struct Block {
  void* ptr;
  size_t bytes;
};

class ResultCache {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = blocks_.size(); i-- > 0;) {  // newest first
        if (blocks_[i].bytes == bytes) {
          void* p = blocks_[i].ptr;
          held_ -= bytes;
          blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
          ++hits_;
          return p;
        }
      }
      ++misses_;
    }
    return allocate(bytes);
  }

  void give(void* p, size_t bytes) {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes > limit_) {
        evicted.push_back({p, bytes});
      } else {
        while (!blocks_.empty() && (held_ + bytes > limit_ || blocks_.size() >= kMaxBlocks)) {
          evicted.push_back(blocks_.front());
          held_ -= blocks_.front().bytes;
          blocks_.erase(blocks_.begin());
        }
        blocks_.push_back({p, bytes});
        held_ += bytes;
      }
    }
    for (const Block& e : evicted) release(e.ptr, e.bytes);
  }

  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = bytes;
    }
    trim(bytes);
  }

  py::dict info() {
    std::lock_guard<std::mutex> lock(mu_);
    py::dict d;
    d["blocks"] = blocks_.size();
    d["held_bytes"] = held_;
    d["limit_bytes"] = limit_;
    d["max_blocks"] = kMaxBlocks;
    d["min_bytes"] = kMinBytes;
    d["hits"] = hits_;
    d["misses"] = misses_;
    return d;
  }

 private:
  // Blocks of >= 4 MiB: 2 MiB-aligned with transparent huge pages advised, mapped to exactly
  // their 4 KiB-rounded size (a mapping that ran past the data would fault a whole 2 MiB page
  // at its tail: 1x1_64to256@56's 6.4 MB grad_x grew the call's RSS by 1.9 MiB that way).
  static bool huge(size_t bytes) { return bytes >= kHugeBytes; }
  static size_t mapped(size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

  static void* allocate(size_t bytes) {
    if (bytes > SIZE_MAX / 2) throw std::bad_alloc();
#if defined(__linux__)
    if (huge(bytes)) {
      const size_t size = mapped(bytes), span = size + kHugeAlign;
      void* m = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) throw std::bad_alloc();
      const uintptr_t base = reinterpret_cast<uintptr_t>(m);
      const uintptr_t start = (base + kHugeAlign - 1) / kHugeAlign * kHugeAlign;
      if (start > base) munmap(m, start - base);
      if (base + span > start + size)
        munmap(reinterpret_cast<void*>(start + size), base + span - (start + size));
#if defined(MADV_HUGEPAGE)
      madvise(reinterpret_cast<void*>(start), size, MADV_HUGEPAGE);  // advice only
#endif
      return reinterpret_cast<void*>(start);
    }
#endif
    void* p = nullptr;
    if (posix_memalign(&p, 64, bytes) != 0 || p == nullptr) throw std::bad_alloc();
    return p;
  }

  static void release(void* p, size_t bytes) {
#if defined(__linux__)
    if (huge(bytes)) {
      munmap(p, mapped(bytes));
      return;
    }
#endif
    std::free(p);
  }

  public:
  // frees the oldest blocks until at most `keep` bytes are held
  void trim(size_t keep) {
    std::vector<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!blocks_.empty() && held_ > keep) {
        evicted.push_back(blocks_.front());
        held_ -= blocks_.front().bytes;
        blocks_.erase(blocks_.begin());
      }
    }
    for (const Block& e : evicted) release(e.ptr, e.bytes);
  }

  private:
  std::mutex mu_;
  std::vector<Block> blocks_;  // oldest first
  size_t held_ = 0;
  size_t hits_ = 0, misses_ = 0;  // takes served from the cache / freshly allocated
  size_t limit_ = size_t(256) << 20;
};

ResultCache& cache() {
  static ResultCache* c = new ResultCache();  // never destroyed, see the header comment
  return *c;
}

void give_back(void* b) {
  auto* blk = static_cast<Block*>(b);
  cache().give(blk->ptr, blk->bytes);
  delete blk;
}

}  // namespace

void register_results(py::module_& m) {
  m.def("empty_result", [](const std::vector<int64_t>& shape, const py::dtype& dtype) {
    size_t bytes = static_cast<size_t>(dtype.itemsize());
    std::vector<py::ssize_t> dims;
    for (int64_t d : shape) {
      FC_CHECK(d >= 0, "empty_result", "negative dimension ", d);
      dims.push_back(static_cast<py::ssize_t>(d));
      FC_CHECK(d == 0 || bytes <= SIZE_MAX / static_cast<size_t>(d), "empty_result",
               "result size overflows");
      bytes *= static_cast<size_t>(d);
    }
    if (bytes < kMinBytes) return py::array(dtype, dims);
    void* p = cache().take(bytes);
    Block* blk = nullptr;
    try {
      blk = new Block{p, bytes};
    } catch (...) {
      cache().give(p, bytes);
      throw;
    }
    py::capsule owner;
    try {
      owner = py::capsule(blk, &give_back);  // owns blk (and the block) from here on
    } catch (...) {
      give_back(blk);
      throw;
    }
    return py::array(dtype, dims, {}, p, owner);
  }, py::arg("shape"), py::arg("dtype"),
  "An uninitialised C-contiguous array; >= 1 MiB ones come from the result cache.");
  m.def("set_result_cache_limit", [](int64_t bytes) {
    FC_CHECK(bytes >= 0, "set_result_cache_limit", "bytes must be >= 0, got ", bytes);
    cache().set_limit(static_cast<size_t>(bytes));
  }, py::arg("bytes"));
  m.def("release_result_cache", [] { cache().trim(0); });
  m.def("result_cache_info", [] { return cache().info(); });
}

}  // namespace fastconv
