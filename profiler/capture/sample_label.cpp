#include "profiler/capture/sample_label.h"

namespace periscope {

__attribute__((tls_model("initial-exec"))) thread_local std::atomic<uint32_t> t_sample_label{0};

}  // namespace periscope
