// Where agents put their sockets: <dir>/<pid>.sock, with <dir> from $PERISCOPE_SOCKET_DIR, else
// $XDG_RUNTIME_DIR/periscope, else /tmp/periscope-<uid>. Shared by the agent (create, clean up)
// and the viewer (find). Plain functions, callable from any thread (not from signal handlers).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace periscope::protocol {

// The directory an agent of this user would use, from the environment.
std::string default_socket_dir();
std::string socket_path(const std::string& dir, pid_t pid);
// The pid in a socket file name "<pid>.sock", or nullopt for any other name.
std::optional<pid_t> pid_from_socket_name(std::string_view file_name);

// Beside an agent's socket, "<pid>.http" holds its HTTP endpoint ("127.0.0.1:9464\n") while it
// has one, so `periscope ps` can show it without connecting.
std::string http_address_file(const std::string& socket_path);
// Beside it: the bearer token of that endpoint (0600), "/run/user/1000/periscope/4242.token".
std::string http_token_file(const std::string& socket_path);
// Creates `dir` (and missing parents) as 0700 and checks that it is ours and private.
// Returns an empty string on success, otherwise why the directory cannot be used.
[[nodiscard]] std::string prepare_socket_dir(const std::string& dir);

// Removes "<pid>.sock" and "<pid>.http" files in `dir` whose process is gone; returns how many were removed.
int remove_stale_sockets(const std::string& dir);

}  // namespace periscope::protocol
