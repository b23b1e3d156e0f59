// Text that came from another process (its name, thread names, command replies, symbol names, a
// profile someone else wrote) made safe to print on a person's terminal: control characters other
// than newline and tab, DEL, UTF-8-encoded C1 controls and bytes that are not UTF-8 become
// visible \xNN escapes. A process, possibly another user's seen by root, cannot move the viewer's
// cursor, retitle its window or make its terminal answer back.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace periscope::viewer {

std::string safe_for_terminal(std::string_view text);

// fputs of safe_for_terminal(text).
void print_untrusted(std::string_view text, std::FILE* to = stdout);

}  // namespace periscope::viewer
