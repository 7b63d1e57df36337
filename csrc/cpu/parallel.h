// The one threading primitive. Work is cut into tasks whose boundaries never depend on the
// thread count, so every result is bitwise identical for any number of threads.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace fastconv {

// Non-owning reference to a callable void(int64_t task, int thread_id).
class TaskFn {
 public:
  template <typename F>
  TaskFn(F&& f)  // NOLINT: implicit on purpose
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int64_t t, int tid) { (*static_cast<std::remove_reference_t<F>*>(o))(t, tid); }) {}
  void operator()(int64_t t, int tid) const { call_(obj_, t, tid); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int);
};

int get_num_threads();            // threads a parallel_for may use (>= 1)
void set_num_threads(int n);      // n >= 1
bool openmp_enabled();

// Number of threads parallel_for(ntasks, ...) will run with: min(threads, ntasks), 1 after fork().
int threads_for(int64_t ntasks);

// Within its lifetime (on the calling thread), when `serial` is true, every parallel_for runs on
// the calling thread alone. For calls too small to pay for waking a team: on a busy machine a
// parallel region around microseconds of work can cost milliseconds. Results are unaffected,
// since tasks never depend on the thread count.
class SerialScope {
 public:
  explicit SerialScope(bool serial);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool prev_;
};

// Runs fn(task, thread_id) for task in [0, ntasks), thread_id in [0, threads_for(ntasks)).
// Exceptions thrown by a task are captured and the first one is rethrown after all threads join.
void parallel_for(int64_t ntasks, TaskFn fn);
// The same with at most max_threads threads: for callers that sized per-thread scratch from
// threads_for() earlier, so a concurrent set_num_threads() can never hand out a larger tid.
void parallel_for(int64_t ntasks, int max_threads, TaskFn fn);

// Consecutive tasks per scheduling step for small tasks over consecutive memory (task_bytes
// each, read and written): runs of about 1 MiB, at least 8 runs per thread. Handed out one task
// at a time, two threads interleave their streams and pay a shared counter per task:
// dw3x3_128@56 NCHW (1024 planes of 25 KiB) ran 1.3 ms on 2 threads, 1.0 on 1; in runs of 32
// planes, 0.63.
int64_t task_run(int64_t ntasks, int threads, double task_bytes);
// parallel_for over runs of `per` consecutive tasks: fn(task, thread_id) for every task, the
// tasks of one run in order on one thread.
void parallel_for_runs(int64_t ntasks, int max_threads, int64_t per, TaskFn fn);

}  // namespace fastconv
