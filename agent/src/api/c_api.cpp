// The C API (periscope/periscope_c.h) over the C++ one: no exception crosses into C, failures
// are one line on stderr and -1.
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/src/logging.h"
#include "periscope/periscope.h"

struct periscope_output {
  std::string text;
  bool failed = false;
};

namespace {

int reported(const periscope::Status& status, const char* what) {
  if (status.ok()) return 0;
  periscope::agent::log_line(std::string(what) + ": " + status.message());
  return -1;
}

size_t copy_out(const std::string& text, char* buffer, size_t size) {
  if (buffer && size > 0) {
    size_t n = std::min(text.size(), size - 1);
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  return text.size();
}

std::string text_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

// The callback's output, or the exception that makes the command fail (or the setter reject).
std::string result_of(const periscope_output& out) {
  if (out.failed) throw std::runtime_error(out.text);
  return out.text;
}

}  // namespace

extern "C" {

int periscope_start(void) {
  return reported(periscope::start(periscope::Options::from_env()), "agent not started");
}

void periscope_stop(void) { periscope::stop(); }

int periscope_running(void) { return periscope::running() ? 1 : 0; }

size_t periscope_socket_path(char* buffer, size_t size) { return copy_out(periscope::socket_path(), buffer, size); }

size_t periscope_http_endpoint(char* buffer, size_t size) {
  return copy_out(periscope::http_endpoint(), buffer, size);
}

int periscope_set_slow_threshold(const char* name, long long milliseconds) {
  if (!name) return reported(periscope::Status::failure("no name"), "periscope_set_slow_threshold");
  return reported(periscope::set_slow_threshold(name, std::chrono::milliseconds(milliseconds)),
                  "periscope_set_slow_threshold");
}

void periscope_output_append(periscope_output_t* out, const char* text, size_t length) {
  if (!out || !text) return;
  try {
    out->text.append(text, length);
  } catch (...) {
  }
}

void periscope_output_fail(periscope_output_t* out, const char* message) {
  if (!out) return;
  out->failed = true;
  try {
    out->text = text_or_empty(message);
  } catch (...) {
  }
}

int periscope_add_command(const char* name, const char* usage, const char* help, periscope_command_fn handler,
                          void* user) {
  if (!name || !handler) return reported(periscope::Status::failure("needs a name and a handler"), "periscope_add_command");
  try {
    auto run = [handler, user](const std::vector<std::string>& args) {
      std::vector<const char*> argv;
      for (const auto& a : args) argv.push_back(a.c_str());
      argv.push_back(nullptr);
      periscope_output out;
      handler(user, static_cast<int>(args.size()), argv.data(), &out);
      return result_of(out);
    };
    return reported(periscope::add_command(name, text_or_empty(usage), text_or_empty(help), run),
                    "periscope_add_command");
  } catch (...) {
    return reported(periscope::Status::failure("out of memory"), "periscope_add_command");
  }
}

int periscope_add_variable(const char* name, const char* help, periscope_getter_fn getter,
                           periscope_setter_fn setter, void* user) {
  if (!name || !getter) {
    return reported(periscope::Status::failure("needs a name and a getter"), "periscope_add_variable");
  }
  try {
    auto get = [getter, user] {
      periscope_output out;
      getter(user, &out);
      return result_of(out);
    };
    std::function<void(const std::string&)> set;
    if (setter) {
      set = [setter, user](const std::string& value) {
        periscope_output error;
        setter(user, value.c_str(), &error);
        if (error.failed) throw std::runtime_error(error.text.empty() ? "value rejected" : error.text);
      };
    }
    return reported(periscope::add_variable(name, get, set, text_or_empty(help)), "periscope_add_variable");
  } catch (...) {
    return reported(periscope::Status::failure("out of memory"), "periscope_add_variable");
  }
}

}  // extern "C"
