// profile: start, stop, status and dump of the agent's sampling profiler.
#include <cstdio>
#include <cstdlib>

#include "agent/src/commands/builtin_commands.h"
#include "agent/src/profiling.h"
#include "manhole/session_scope.h"
#include "profiler/profile_formats.h"
#include "profiler/sampling_rate.h"

namespace periscope::agent {

namespace {

using protocol::Reply;

nlohmann::json status_json(const ProfileStatus& s) {
  return {{"running", s.running},         {"mode", sample_mode_name(s.mode)},
          {"hz", s.hz},                   {"clock", s.clock},
          {"seconds", s.seconds},         {"samples", s.samples},
          {"lost", s.lost},               {"threads", s.threads},
          {"signals", s.signals},         {"signal", s.signal},
          {"problem", s.problem},         {"unsampled", s.unsampled},
          {"handler_ns_p50", s.handler_ns_p50}, {"handler_ns_p99", s.handler_ns_p99}};
}

// Addresses only, for a viewer that names them itself (profile_from_raw_json).
nlohmann::json raw_profile_json(Profiling& profiling, ProfileId id) {
  std::vector<std::vector<uint64_t>> pcs_of;
  Profile p = unsymbolized_profile(profiling, id, &pcs_of);
  nlohmann::json out = profile_to_json(p);
  for (size_t i = 0; i < pcs_of.size(); ++i) {
    out["stacks"][i].erase("frames");
    out["stacks"][i]["pcs"] = std::move(pcs_of[i]);
  }
  out["raw"] = true;
  return out;
}

// Every profile has an owner, so that none outlives the client that wanted it: the session that
// started it (the profile stops when the session ends, however it ends), or a time limit. Each is
// a window of its own on the one sampler: several clients profile at once.
Reply start(Profiling& profiling, const manhole::Args& args) {
  SampleMode mode = SampleMode::kCpu;
  int hz = kDefaultSamplingHz;
  long for_seconds = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "cpu") mode = SampleMode::kCpu;
    else if (args[i] == "wall") mode = SampleMode::kWall;
    else if (args[i] == "--for") {
      char* end = nullptr;
      for_seconds = i + 1 < args.size() ? std::strtol(args[i + 1].c_str(), &end, 10) : 0;
      if (!end || *end != '\0' || for_seconds < 1 || for_seconds > kMaxProfileSeconds) {
        return Reply::failure("profile start: --for takes SECONDS, 1.." + std::to_string(kMaxProfileSeconds));
      }
      ++i;
    } else if (char* end = nullptr; (hz = static_cast<int>(std::strtol(args[i].c_str(), &end, 10))), *end != '\0') {
      return Reply::failure("profile start: expected cpu, wall, a rate in Hz or --for SECONDS, not '" + args[i] + "'");
    }
  }
  if (for_seconds == 0 && !manhole::in_session()) {
    return Reply::failure("profile start: outside a manhole session a profile needs --for SECONDS (over HTTP: "
                          "/debug/pprof/profile?seconds=N)");
  }
  const uint64_t session = for_seconds > 0 ? 0 : manhole::session_id();
  if (session != 0 && find_profile(profiling, session, true) != 0) {
    return Reply::failure("profile start: this session's profile is running; 'profile stop' first");
  }
  ProfileId id = 0;
  std::string note;
  if (auto err = start_profile(profiling, mode, hz, session, &id, &note); !err.empty()) {
    return Reply::failure("profile start: " + err);
  }
  std::string owner;
  if (for_seconds > 0) {
    stop_profile_after(profiling, id, std::chrono::seconds(for_seconds));
    owner = "for " + std::to_string(for_seconds) + " s";
  } else {
    (void)manhole::when_session_ends([&profiling, id] { stop_profile(profiling, id); });
    owner = "until this session ends";
  }
  ProfileStatus s = profile_status(profiling, id);
  nlohmann::json data = status_json(s);
  data["id"] = id;
  data["clients"] = running_profiles(profiling);
  if (!note.empty()) data["note"] = note;
  return Reply::success("profiling " + std::string(sample_mode_name(mode)) + " at " + std::to_string(s.hz) + " Hz (" +
                            s.clock + "), " + owner + (note.empty() ? "" : "; " + note) + "\n",
                        std::move(data));
}

// This session's profile, else (for `periscope exec`, a new session each time) another: for what
// stops, a timed one; for what reads, the newest running one, else the one closed last.
ProfileId profile_for_this_client(Profiling& profiling, bool running_only) {
  const uint64_t session = manhole::session_id();
  if (ProfileId own = session ? find_profile(profiling, session, running_only) : 0; own != 0) return own;
  if (!running_only) {
    const ProfileId running = find_profile(profiling, kAnySession, true);
    return running != 0 ? running : last_closed_profile(profiling);
  }
  // Nothing of ours runs: a timed profile (started with --for, owned by no session) may be stopped.
  return find_profile(profiling, 0, true);
}

Reply stop(Profiling& profiling) {
  const ProfileId id = profile_for_this_client(profiling, true);
  if (id == 0 || !stop_profile(profiling, id)) {
    const size_t others = running_profiles(profiling);
    return Reply::failure("profile stop: no profile of this session is running" +
                          (others ? " (" + std::to_string(others) + " of other clients are; they end with them)"
                                  : std::string()));
  }
  ProfileStatus s = profile_status(profiling, id);
  char line[160];
  std::snprintf(line, sizeof line, "stopped after %.1f s: %llu samples, %llu lost\n", s.seconds,
                static_cast<unsigned long long>(s.samples), static_cast<unsigned long long>(s.lost));
  return Reply::success(line, status_json(s));
}

Reply status(Profiling& profiling) {
  const ProfileId id = profile_for_this_client(profiling, false);
  ProfileStatus s = profile_status(profiling, id);
  char line[300];
  std::snprintf(line, sizeof line,
                "%s: %s at %d Hz, %.1f s, %llu samples, %llu lost, %zu threads; handler %.1f us median, %.1f us "
                "p99\n",
                s.running ? "running" : "stopped", sample_mode_name(s.mode), s.hz, s.seconds,
                static_cast<unsigned long long>(s.samples), static_cast<unsigned long long>(s.lost), s.threads,
                s.handler_ns_p50 / 1000, s.handler_ns_p99 / 1000);
  nlohmann::json data = status_json(s);
  data["id"] = id;
  data["clients"] = running_profiles(profiling);
  return Reply::success(line, std::move(data));
}

Reply profile(const LiveParts& parts, const manhole::Args& args) {
  Profiling* profiling = parts.profiling.load();
  if (!profiling) return Reply::failure("profile: the agent is not running");
  const std::string& action = args[0];
  if (action == "start") return start(*profiling, args);
  if (action == "stop") return stop(*profiling);
  if (action == "status") return status(*profiling);
  const ProfileId id = action == "dump" ? profile_for_this_client(*profiling, false) : 0;
  if (action == "dump" && args.size() > 1 && args[1] == "--raw") {
    return Reply::success("profile with addresses only (--raw)\n", raw_profile_json(*profiling, id));
  }
  if (action == "dump") {
    Profile p = symbolized_profile(*profiling, id);
    return Reply::success(to_folded(p, {}), profile_to_json(p));
  }
  return Reply::failure("profile: unknown action '" + action + "' (start, stop, status or dump)");
}

}  // namespace

std::string add_profile_commands(manhole::CommandRegistry& registry, const LiveParts& parts) {
  manhole::Command command{"profile", "ACTION [ARGS...]",
                           "sampling profiler: start [cpu|wall] [HZ] [--for SECONDS] (until this session ends, or for SECONDS), "
                           "stop, status, dump [--raw] (folded; --raw: addresses as JSON)",
                           [&parts](const manhole::Args& args) { return profile(parts, args); }};
  command.changes_state = true;
  return registry.add(std::move(command));
}

}  // namespace periscope::agent
