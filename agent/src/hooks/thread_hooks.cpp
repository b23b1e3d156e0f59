// pthread_create() as the host calls it. While a CPU profile runs, a new thread arms its own
// sampling before the host's start routine runs (Sampler::arm_new_thread): a thread that lives
// 10 ms is otherwise gone before the agent's next rescan (100 ms) and its CPU time never sampled.
// When nothing samples, the call passes straight through after one atomic load.
//
// Exported from libperiscope.so (exports.map). Not built into sanitizer builds: ASan and TSan
// interpose pthread_create themselves and start their own bookkeeping in the new thread, which
// code of ours must not run before.
#include <dlfcn.h>
#include <new>
#include <pthread.h>

#include "profiler/capture/sampler.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

namespace {

using PthreadCreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

PthreadCreateFn g_next_pthread_create = nullptr;

// dlsym allocates: done at load (and again if a constructor ran before ours and called in).
PthreadCreateFn next_pthread_create() {
  if (!g_next_pthread_create) {
    g_next_pthread_create = reinterpret_cast<PthreadCreateFn>(::dlsym(RTLD_NEXT, "pthread_create"));
  }
  return g_next_pthread_create;
}

__attribute__((constructor(101))) void resolve_at_load() { (void)next_pthread_create(); }

struct HostStart {
  void* (*routine)(void*);
  void* arg;
};

void* start_sampled(void* p) {
  const HostStart start = *static_cast<HostStart*>(p);
  delete static_cast<HostStart*>(p);
  periscope::Sampler::arm_new_thread();
  return start.routine(start.arg);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                                     void* (*routine)(void*), void* arg) {
  PthreadCreateFn next = next_pthread_create();
  if (!periscope::Sampler::samples_new_threads()) return next(thread, attr, routine, arg);
  auto* start = new (std::nothrow) HostStart{routine, arg};
  if (!start) return next(thread, attr, routine, arg);
  const int r = next(thread, attr, start_sampled, start);
  if (r != 0) delete start;
  return r;
}

#endif
