#include "profiler/flamegraph_html.h"

#include <algorithm>
#include <string_view>

namespace periscope {

namespace {

// JSON inside <script>: "</" must not end the element.
std::string script_safe(std::string json) {
  for (size_t pos = 0; (pos = json.find("</", pos)) != std::string::npos; pos += 3) json.replace(pos, 2, "<\\/");
  return json;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

constexpr const char* kPage = R"HTML(<!doctype html>
<html><head><meta charset="utf-8"><title>@TITLE@</title>
<style>
body{margin:0;font:12px system-ui,sans-serif;background:#fff;color:#222}
header{padding:8px 10px;border-bottom:1px solid #ddd;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header b{font-size:14px}
#meta{color:#666}
#match{color:#a0306c;font-weight:600}
#chart{position:relative;margin:6px 10px}
.f{position:absolute;height:17px;line-height:17px;overflow:hidden;white-space:nowrap;font-size:11px;
   border-right:1px solid #fff;border-bottom:1px solid #fff;box-sizing:border-box;padding-left:3px;cursor:pointer}
.f.hit{background:#e03c8a!important;color:#fff}
.f.dim{opacity:.45}
#tip{position:fixed;bottom:0;left:0;right:0;background:#f6f6f6;border-top:1px solid #ddd;padding:4px 10px;min-height:16px}
</style></head><body>
<header><b>@TITLE@</b><span id="meta"></span>
<input id="search" size="28" placeholder="search (regular expression)">
<span id="match"></span>
<select id="thread"><option value="">all threads</option></select>
<select id="request" hidden><option value="">all requests</option></select>
<label><input type="checkbox" id="reverse"> reverse</label>
<label><input type="checkbox" id="icicle"> icicle</label>
<button id="reset">reset zoom</button></header>
<div id="chart"></div><div id="tip">click a frame to zoom in</div>
<script>
const PROFILE = @DATA@;
const $ = id => document.getElementById(id);
const H = 18;
let zoom = null;

function build() {
  const thread = $('thread').value, request = $('request').value, reverse = $('reverse').checked;
  const root = {name: 'all', total: 0, self: 0, kids: new Map(), parent: null};
  for (const s of PROFILE.stacks) {
    if (thread && s.thread !== thread) continue;
    if (request && (s.request || '\n') !== request) continue;  // '\n': samples outside any request
    const frames = reverse ? s.frames.slice().reverse() : s.frames;
    let node = root;
    root.total += s.count;
    for (const name of frames) {
      let kid = node.kids.get(name);
      if (!kid) { kid = {name, total: 0, self: 0, kids: new Map(), parent: node}; node.kids.set(name, kid); }
      kid.total += s.count;
      node = kid;
    }
    node.self += s.count;
  }
  return root;
}

function color(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${10 + h % 45},${70 + h % 20}%,${58 + h % 12}%)`;
}

function render() {
  const root = build(), chart = $('chart'), width = chart.clientWidth || 1000;
  const top = zoom && findPath(root, zoom) || root;
  const rows = [];
  // Ancestors of the zoomed frame stay visible at full width.
  const chain = [];
  for (let n = top; n; n = n.parent) chain.unshift(n);
  chain.forEach((n, depth) => rows.push({n, depth, x: 0, w: 1}));
  const layout = (node, depth, x, w) => {
    let cx = x;
    for (const kid of [...node.kids.values()].sort((a, b) => a.name < b.name ? -1 : 1)) {
      const kw = w * kid.total / node.total;
      if (kw * width >= 1) { rows.push({n: kid, depth, x: cx, w: kw}); layout(kid, depth + 1, cx, kw); }
      cx += kw;
    }
  };
  layout(top, chain.length, 0, 1);
  const maxDepth = Math.max(...rows.map(r => r.depth)) + 1;
  chart.style.height = (maxDepth * H) + 'px';
  const icicle = $('icicle').checked, re = searchRegex();
  chart.textContent = '';
  for (const r of rows) {
    const d = document.createElement('div');
    d.className = 'f' + (re ? (re.test(r.n.name) ? ' hit' : ' dim') : '');
    d.style.left = (r.x * 100) + '%';
    d.style.width = (r.w * 100) + '%';
    d.style.top = (icicle ? r.depth * H : (maxDepth - 1 - r.depth) * H) + 'px';
    d.style.background = r.n === root ? '#bbb' : color(r.n.name);
    d.textContent = r.n.name;
    const share = (100 * r.n.total / root.total).toFixed(2);
    d.title = `${r.n.name}\n${amount(r.n.total)} (${share}%), self ${amount(r.n.self)}`;
    d.onclick = () => { zoom = pathOf(r.n); render(); };
    d.onmouseover = () => { $('tip').textContent = d.title.replace('\n', ' | '); };
    chart.appendChild(d);
  }
  showMatch(root, re);
}

function pathOf(node) { const p = []; for (let n = node; n.parent; n = n.parent) p.unshift(n.name); return p; }
function findPath(root, path) {
  let n = root;
  for (const name of path) { n = n.kids.get(name); if (!n) return null; }
  return n;
}
function searchRegex() {
  const q = $('search').value;
  if (!q) return null;
  try { return new RegExp(q); } catch (e) { return null; }
}
// A count in the profile's unit: samples, or a heap profile's bytes or objects.
function amount(n) {
  const unit = PROFILE.unit || 'samples';
  if (unit !== 'bytes') return `${n} ${unit}`;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; ++u; }
  return `${u ? v.toFixed(v < 10 ? 2 : 1) : v} ${units[u]}`;
}
// The share of samples under a matching frame, counted once where matches nest.
function showMatch(root, re) {
  if (!re) { $('match').textContent = ''; return; }
  let hit = 0;
  const walk = n => { if (n !== root && re.test(n.name)) { hit += n.total; return; } n.kids.forEach(walk); };
  walk(root);
  $('match').textContent = `matched ${(100 * hit / Math.max(root.total, 1)).toFixed(1)}% of ${amount(root.total)}`;
}

const threads = [...new Set(PROFILE.stacks.map(s => s.thread))].filter(t => t).sort();
for (const t of threads) { const o = document.createElement('option'); o.value = o.textContent = t; $('thread').appendChild(o); }
const requests = [...new Set(PROFILE.stacks.map(s => s.request))].filter(r => r).sort();
for (const r of requests) { const o = document.createElement('option'); o.value = o.textContent = r; $('request').appendChild(o); }
{ const o = document.createElement('option'); o.value = '\n'; o.textContent = 'no request'; $('request').appendChild(o); }
$('request').hidden = requests.length === 0;
$('meta').textContent = PROFILE.mode === 'heap' ? `heap profile: ${PROFILE.clock}, ${amount(PROFILE.samples)}` :
  `${PROFILE.mode} profile, ${PROFILE.hz} Hz, ${PROFILE.seconds.toFixed(1)} s, ` +
  `${PROFILE.samples} samples, ${PROFILE.lost} lost, ${PROFILE.threads} threads` +
  (PROFILE.costs && PROFILE.costs.process_cpu_s > 0 ? `; sampling: handler ${PROFILE.costs.handler_p50_us.toFixed(1)} us median, ` +
   `${(100 * PROFILE.costs.handler_s / PROFILE.costs.process_cpu_s).toFixed(2)}% of the process's CPU time` : '');
for (const id of ['thread', 'request', 'reverse', 'icicle']) $(id).onchange = () => { zoom = null; render(); };
$('search').oninput = render;
$('reset').onclick = () => { zoom = null; render(); };
window.onresize = render;
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get('search')) $('search').value = hash.get('search');
for (const id of ['thread', 'request']) if (hash.get(id)) $(id).value = hash.get(id);  // a link to one view
render();
</script></body></html>
)HTML";

}  // namespace

std::string to_flamegraph_html(const Profile& profile, const std::string& title) {
  const std::string escaped_title = html_escape(title);
  const std::string data =
      script_safe(profile_to_json(profile).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  // Placeholders are looked for in the template only, never in what replaced one: a title or a
  // profile (both from outside) that contains "@TITLE@" must not be substituted again.
  const std::string_view page_template = kPage;
  std::string page;
  size_t from = 0;
  for (;;) {
    size_t title_at = page_template.find("@TITLE@", from), data_at = page_template.find("@DATA@", from);
    size_t at = std::min(title_at, data_at);
    if (at == std::string_view::npos) break;
    page.append(page_template.substr(from, at - from));
    page.append(at == title_at ? escaped_title : data);
    from = at + (at == title_at ? 7 : 6);
  }
  page.append(page_template.substr(from));
  return page;
}

}  // namespace periscope
