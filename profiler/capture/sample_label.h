// The label every CPU and wall sample of a thread carries (0: none). The agent's request API sets
// it to the request the thread is serving (agent/src/watchdog/request_table.cpp), so that a
// profile can say which request each sample was serving.
#pragma once

#include <atomic>
#include <cstdint>

namespace periscope {

// Written by its own thread, read by the sampling handler on that same thread: a relaxed atomic
// (a plain move) in initial-exec TLS, so the read is async-signal-safe and costs one load.
extern __attribute__((tls_model("initial-exec"))) thread_local std::atomic<uint32_t> t_sample_label;

inline uint32_t sample_label() { return t_sample_label.load(std::memory_order_relaxed); }
inline void set_sample_label(uint32_t label) { t_sample_label.store(label, std::memory_order_relaxed); }

}  // namespace periscope
