#include "profiler/profile_tree.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

namespace periscope {

namespace {

struct Node {
  uint64_t total = 0;
  uint64_t self = 0;
  std::map<std::string, std::unique_ptr<Node>> children;
};

void print(const Node& node, const std::string& name, int depth, uint64_t all, double min_percent, std::string* out) {
  char line[64];
  std::snprintf(line, sizeof line, "%6.1f%% %6.1f%%  ", 100.0 * static_cast<double>(node.total) / static_cast<double>(all),
                100.0 * static_cast<double>(node.self) / static_cast<double>(all));
  *out += line + std::string(static_cast<size_t>(depth) * 2, ' ') + name + "\n";
  std::vector<std::pair<const std::string*, const Node*>> kids;
  for (const auto& [n, child] : node.children) kids.push_back({&n, child.get()});
  std::sort(kids.begin(), kids.end(), [](const auto& a, const auto& b) { return a.second->total > b.second->total; });
  for (const auto& [n, child] : kids) {
    if (100.0 * static_cast<double>(child->total) / static_cast<double>(all) < min_percent) continue;
    print(*child, *n, depth + 1, all, min_percent, out);
  }
}

}  // namespace

std::string render_tree(const Profile& p, bool bottom_up, double min_percent) {
  Node root;
  for (const auto& s : p.stacks) {
    Node* node = &root;
    root.total += s.count;
    auto visit = [&](const std::string& frame) {
      auto& child = node->children[frame];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
      node->total += s.count;
    };
    if (bottom_up) std::for_each(s.frames.rbegin(), s.frames.rend(), visit);
    else std::for_each(s.frames.begin(), s.frames.end(), visit);
    if (!bottom_up) node->self += s.count;
  }
  if (bottom_up) {  // a root's self time is the time spent in it as the leaf
    for (auto& [name, child] : root.children) {
      for (const auto& s : p.stacks) {
        if (!s.frames.empty() && s.frames.back() == name) child->self += s.count;
      }
    }
  }
  // A folded file carries no duration, rate or losses: say only what the file says.
  std::string out = (p.mode.empty() ? std::string("profile") : p.mode + " profile") + ": " +
                    (p.unit == "bytes" ? human_bytes(static_cast<double>(p.samples)) + " (" + p.clock + ")"
                                       : std::to_string(p.samples) + " " + p.unit);
  if (p.lost > 0) out += ", " + std::to_string(p.lost) + " lost";
  if (p.seconds > 0) {
    char span[64];
    std::snprintf(span, sizeof span, ", %.1f s", p.seconds);
    out += span;
  }
  if (p.hz > 0) out += " at " + std::to_string(p.hz) + " Hz";
  if (p.threads > 0) out += ", " + std::to_string(p.threads) + (p.threads == 1 ? " thread" : " threads");
  out += std::string(" (") + (bottom_up ? "bottom-up: where time is spent, then who called it" : "top-down") + ")\n";
  if (auto costs = describe_costs(p); !costs.empty()) out += "sampling: " + costs + "\n";
  out += "  total    self  function\n";
  if (root.total == 0) return out + "(no samples)\n";
  std::vector<std::pair<const std::string*, const Node*>> kids;
  for (const auto& [n, child] : root.children) kids.push_back({&n, child.get()});
  std::sort(kids.begin(), kids.end(), [](const auto& a, const auto& b) { return a.second->total > b.second->total; });
  for (const auto& [n, child] : kids) {
    if (100.0 * static_cast<double>(child->total) / static_cast<double>(root.total) >= min_percent) {
      print(*child, *n, 0, root.total, min_percent, &out);
    }
  }
  return out;
}

}  // namespace periscope
