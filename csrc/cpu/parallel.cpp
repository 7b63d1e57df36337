// The only file with "#pragma omp". Threads: FASTCONV_NUM_THREADS, else OpenMP's own default
// (which honours OMP_NUM_THREADS); set_num_threads() overrides both. After fork() the child runs
// single-threaded: GNU OpenMP's pool does not survive fork and would hang the child.
#include "cpu/parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>

#ifdef FASTCONV_HAVE_OPENMP
#include <omp.h>
#endif

namespace fastconv {
namespace {

std::atomic<int> g_threads{0};  // 0: not yet initialised
thread_local bool t_serial = false;
std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true); }

int default_threads() {
  if (const char* env = std::getenv("FASTCONV_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) return static_cast<int>(v);
  }
#ifdef FASTCONV_HAVE_OPENMP
  int n = omp_get_max_threads();
  return n >= 1 ? n : 1;
#else
  return 1;
#endif
}

void init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    int expected = 0;
    g_threads.compare_exchange_strong(expected, default_threads());
  });
}

}  // namespace

bool openmp_enabled() {
#ifdef FASTCONV_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

int get_num_threads() {
  init_once();
  if (g_forked_child.load()) return 1;
  return g_threads.load();
}

void set_num_threads(int n) {
  init_once();
  g_threads.store(n < 1 ? 1 : n);
}

SerialScope::SerialScope(bool serial) : prev_(t_serial) { t_serial = prev_ || serial; }
SerialScope::~SerialScope() { t_serial = prev_; }

int threads_for(int64_t ntasks) {
  if (t_serial) return 1;
  int t = get_num_threads();
  if (ntasks < t) t = static_cast<int>(ntasks < 1 ? 1 : ntasks);
  return t;
}

void parallel_for(int64_t ntasks, TaskFn fn) { parallel_for(ntasks, 1 << 30, fn); }

int64_t task_run(int64_t ntasks, int threads, double task_bytes) {
  constexpr double kRunBytes = 1 << 20;
  if (threads <= 1 || ntasks <= 0) return std::max<int64_t>(ntasks, 1);
  const int64_t most = std::max<int64_t>(1, ntasks / (8 * int64_t(threads)));
  const double want = task_bytes > 0 ? kRunBytes / task_bytes : double(most);
  return std::max<int64_t>(1, std::min<int64_t>(most, want < 1 ? 1 : int64_t(want)));
}

void parallel_for_runs(int64_t ntasks, int max_threads, int64_t per, TaskFn fn) {
  if (per <= 1) {
    parallel_for(ntasks, max_threads, fn);
    return;
  }
  const int64_t runs = (ntasks + per - 1) / per;
  parallel_for(runs, max_threads, [&](int64_t r, int tid) {
    const int64_t t1 = std::min(ntasks, (r + 1) * per);
    for (int64_t t = r * per; t < t1; ++t) fn(t, tid);
  });
}

void parallel_for(int64_t ntasks, int max_threads, TaskFn fn) {
  if (ntasks <= 0) return;
  const int nt = std::max(1, std::min(threads_for(ntasks), max_threads));
  if (nt <= 1) {
    for (int64_t t = 0; t < ntasks; ++t) fn(t, 0);
    return;
  }
#ifdef FASTCONV_HAVE_OPENMP
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntasks; ++t) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        fn(t, tid);
      } catch (...) {
#pragma omp critical(fastconv_error)
        {
          if (!error) error = std::current_exception();
        }
        failed.store(true);
      }
    }
  }
  if (error) std::rethrow_exception(error);
#else
  for (int64_t t = 0; t < ntasks; ++t) fn(t, 0);
#endif
}

}  // namespace fastconv
