// `periscope view FILE [--bottom-up] [--min-percent P] [-o OUT [--threads] [--by-request]]`: reads any profile we write
// (.folded, .speedscope.json, .pb.gz) and prints its call tree, or converts it to OUT's format.
#include <cstdio>
#include <fstream>

#include "profiler/profile_formats.h"
#include "profiler/profile_readers.h"
#include "profiler/profile_tree.h"
#include "viewer/cli_errors.h"
#include "viewer/commands.h"
#include "viewer/terminal_text.h"

namespace periscope::viewer {

int run_view(const ViewOptions& o) {
  Profile profile;
  std::string error;
  if (!read_profile_file(o.input, &profile, &error)) throw CliError(kExitCommandFailed, error);
  if (o.output.empty()) {
    print_untrusted(render_tree(profile, o.bottom_up, o.min_percent));
    return kExitOk;
  }
  std::string format = profile_format_for(o.output, &error);
  if (format.empty()) throw CliError(kExitUsage, error);
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << render_profile(profile, format, {o.by_request, o.per_thread});
  if (!out) throw CliError(kExitCommandFailed, "cannot write " + o.output);
  std::fprintf(stderr, "wrote %s: %llu samples, %zu stacks\n", o.output.c_str(),
               static_cast<unsigned long long>(profile.samples), profile.stacks.size());
  return kExitOk;
}

}  // namespace periscope::viewer
