#include "server/web_page.h"

#include <nlohmann/json.hpp>

namespace kvc {
namespace {

char BlockChar(BlockState s, bool registered) {
  switch (s) {
    case BlockState::kFree: return '.';
    case BlockState::kUsed: return registered ? 'U' : 'u';
    case BlockState::kShared: return registered ? 'S' : 's';
    case BlockState::kCached: return 'c';
  }
  return '?';
}

// The page. Everything it needs is here: the test machines have no internet. Elements the
// browser test reads: #block-map .cell[data-state][data-registered], #count-<state>,
// #seq-rows tr[data-seq][data-state], #hit-line, body[data-polls][data-step].
constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvcache · KV cache</title>
<link rel="icon" href="data:,">
<style>
  :root { --free:#e4e4e7; --used:#2563eb; --shared:#7c3aed; --cached:#f59e0b; --hit:#16a34a;
          --ink:#18181b; --muted:#71717a; --line:#e4e4e7; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
         background: #f4f4f5; }
  header { display: flex; align-items: baseline; gap: 12px; padding: 14px 24px; background: #fff;
           border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header .sub { color: var(--muted); }
  #status { margin-left: auto; font-size: 13px; color: var(--muted); }
  #pause { font: inherit; font-size: 12px; padding: 2px 10px; border: 1px solid var(--line);
           border-radius: 6px; background: #fff; color: var(--ink); cursor: pointer; }
  #pause[aria-pressed=true] { background: var(--ink); color: #fff; }
  #status::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%;
                    margin-right: 6px; background: #a1a1aa; }
  #status[data-state=live]::before { background: var(--hit); }
  #status[data-state=error]::before { background: #dc2626; }
  #status[data-state=paused]::before { background: var(--cached); }
  main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 32px; display: grid; gap: 16px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
  .card h2 { font-size: 14px; margin: 0 0 10px; display: flex; gap: 8px; align-items: baseline; }
  .card h2 small { color: var(--muted); font-weight: normal; }
  #stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .stat { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  .stat b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
  .stat span { color: var(--muted); font-size: 12px; }
  .legend { display: flex; flex-wrap: wrap; gap: 14px; margin-bottom: 10px; color: var(--muted); }
  .legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px;
              margin-right: 5px; position: relative; }
  .legend b { color: var(--ink); font-variant-numeric: tabular-nums; }
  #block-map { --cell: 16px; display: grid; grid-template-columns: repeat(auto-fill, var(--cell));
               gap: calc(var(--cell) / 6 + 1px); }
  .cell { width: var(--cell); height: var(--cell); border-radius: 3px; background: var(--free);
          position: relative; transition: background-color .1s; }
  [data-state=used] { background: var(--used); }
  [data-state=shared] { background: var(--shared); }
  [data-state=cached] { background: var(--cached); }
  .cell[data-registered="1"]:not([data-state=cached])::after, .legend .reg::after { content: "";
          position: absolute; inset: 32%; border-radius: 50%; background: #fff; }
  .legend .reg { background: var(--used); }
  #block-map.focus .cell:not(.hl) { opacity: .25; }
  .cell.hl { outline: 2px solid var(--ink); outline-offset: 1px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  tbody tr[data-seq] { cursor: pointer; }
  tbody tr[data-seq]:hover, tbody tr.pinned { background: #f4f4f5; }
  td.ids { color: var(--muted); font-size: 12px; max-width: 340px; }
  .badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; color: #fff;
           background: #a1a1aa; }
  .badge.prefill { background: var(--shared); }
  .badge.decode { background: var(--used); }
  .empty td { color: var(--muted); text-align: center; }
  svg { width: 100%; height: auto; display: block; }
  svg .grid { stroke: var(--line); }
  svg text { fill: var(--muted); font-size: 10px; }
  svg polyline { fill: none; stroke-width: 1.5; stroke-linejoin: round; }
  svg #hit-line { stroke-width: 2.5; }
</style>
</head>
<body data-polls="0">
<header>
  <h1>kvcache</h1><span class="sub" id="model">KV cache</span>
  <span id="status" data-state="connecting">connecting…</span>
  <button id="pause" type="button" aria-pressed="false" title="freeze the view to look at one moment">pause</button>
</header>
<main>
  <section id="stats">
    <div class="stat"><b id="stat-inuse">–</b><span id="stat-inuse-sub">blocks in use</span></div>
    <div class="stat"><b id="stat-cached">–</b><span>blocks in the prefix cache</span></div>
    <div class="stat"><b id="stat-hit">–</b><span id="stat-hit-sub">prefix hit rate</span></div>
    <div class="stat"><b id="stat-tps">–</b><span>generated tokens/s (engine time)</span></div>
    <div class="stat"><b id="stat-running">–</b><span id="stat-queue">running</span></div>
    <div class="stat"><b id="stat-preempt">–</b><span id="stat-evict">preemptions</span></div>
  </section>
  <section class="card">
    <h2>Block pool <small id="pool-desc"></small></h2>
    <div class="legend">
      <span><i style="background:var(--free)"></i>free <b id="count-free">0</b></span>
      <span><i style="background:var(--used)"></i>in use <b id="count-used">0</b></span>
      <span><i style="background:var(--shared)"></i>shared <b id="count-shared">0</b></span>
      <span><i style="background:var(--cached)"></i>cached <b id="count-cached">0</b></span>
      <span><i class="reg"></i>in use and in the prefix cache <b id="count-registered">0</b></span>
    </div>
    <div id="block-map"></div>
  </section>
  <section class="card">
    <h2>Sequences <small>hover or click a row to see its blocks</small></h2>
    <table>
      <thead><tr><th>id</th><th>state</th><th>prompt (cached)</th><th>generated</th>
        <th>blocks</th><th>memory</th><th>block table</th></tr></thead>
      <tbody id="seq-rows"></tbody>
    </table>
  </section>
  <section class="card">
    <h2>Over time <small>up to the last minute</small></h2>
    <div class="legend">
      <span><i style="background:var(--hit)"></i>prefix hit rate (prompt tokens from the cache)</span>
      <span><i style="background:var(--used)"></i>blocks in use</span>
      <span><i style="background:var(--cached)"></i>blocks cached</span>
    </div>
    <svg id="chart" viewBox="0 0 600 150" role="img" aria-label="prefix hit rate and block use over time">
      <line class="grid" x1="34" x2="596" y1="10" y2="10"/><text x="2" y="13">100%</text>
      <line class="grid" x1="34" x2="596" y1="70" y2="70"/><text x="8" y="73">50%</text>
      <line class="grid" x1="34" x2="596" y1="130" y2="130"/><text x="14" y="133">0%</text>
      <polyline id="cached-line" style="stroke:var(--cached)" points=""/>
      <polyline id="used-line" style="stroke:var(--used)" points=""/>
      <polyline id="hit-line" style="stroke:var(--hit)" points=""/>
      <text x="34" y="147" id="chart-t0"></text><text x="560" y="147">now</text>
    </svg>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const interval = Math.max(50, Number(new URLSearchParams(location.search).get("interval")) || 300);
const STATE = { ".": "free", u: "used", U: "used", s: "shared", S: "shared", c: "cached" };
const WINDOW_MS = 60000;
const history = [];
let cells = [], hover = null, pinned = null, polls = 0, paused = false, step = 0;

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; ++i; }
  return (i ? n.toFixed(n < 10 ? 2 : 1) : n) + " " + u[i];
}
// "0–3, 7, 9–10": block ids with consecutive runs folded.
function ranges(ids) {
  const out = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) ++j;
    out.push(j > i ? ids[i] + "–" + ids[j] : String(ids[i]));
    i = j + 1;
  }
  return out.join(", ");
}
function highlight() {
  const sel = pinned ?? hover;
  $("block-map").classList.toggle("focus", sel !== null);
  for (const c of cells) c.classList.toggle("hl", sel !== null && c.dataset.seqs.split(" ").includes(sel));
  for (const r of $("seq-rows").rows) r.classList.toggle("pinned", r.dataset.seq === pinned);
}
function drawMap(d) {
  const map = $("block-map");
  if (cells.length !== d.num_blocks) {
    const n = d.num_blocks;
    map.style.setProperty("--cell", (n <= 256 ? 22 : n <= 1024 ? 14 : n <= 4096 ? 8 : 5) + "px");
    map.textContent = "";
    cells = [];
    for (let i = 0; i < d.num_blocks; ++i) {
      const c = document.createElement("div");
      c.className = "cell";
      c.dataset.block = i;
      map.append(c);
      cells.push(c);
    }
  }
  const owners = cells.map(() => []);
  for (const s of d.sequences) for (const b of s.blocks) owners[b]?.push(s.id);
  cells.forEach((c, i) => {
    const ch = d.blocks[i], state = STATE[ch] ?? "free";
    c.dataset.state = state;
    c.dataset.registered = "USc".includes(ch) ? "1" : "0";
    c.dataset.seqs = owners[i].join(" ");
    c.title = `block ${i}: ${state}` + (d.refs[i] > 1 ? ` (${d.refs[i]} references)` : "") +
              ("US".includes(ch) ? ", in the prefix cache" : "") +
              (owners[i].length ? ` — sequence ${owners[i].join(", ")}` : "");
  });
  for (const k of ["free", "used", "shared", "cached", "registered"]) $("count-" + k).textContent = d.counts[k];
}
// Rows are kept per sequence id and updated in place, so a hovered row stays put.
function drawSequences(d) {
  const body = $("seq-rows"), keep = new Set(d.sequences.map((s) => String(s.id)));
  for (const r of [...body.rows]) if (!keep.has(r.dataset.seq)) r.remove();
  d.sequences.forEach((s, i) => {
    let r = [...body.rows].find((row) => row.dataset.seq === String(s.id));
    if (!r) {
      r = document.createElement("tr");
      r.dataset.seq = s.id;
      for (let c = 0; c < 7; ++c) r.insertCell();
      r.cells[1].append(document.createElement("span"));
      r.cells[6].className = "ids";
    }
    if (body.rows[i] !== r) body.insertBefore(r, body.rows[i] ?? null);
    r.dataset.state = s.state;
    r.cells[1].firstChild.className = "badge " + s.state;
    r.cells[1].firstChild.textContent = s.state;
    const text = ["#" + s.id, null, `${s.prompt_tokens} (${s.cached_tokens})`,
                  `${s.generated_tokens} / ${s.max_tokens}`, s.blocks.length, bytes(s.bytes),
                  ranges(s.blocks) + (s.preemptions ? ` · preempted ${s.preemptions}×` : "")];
    text.forEach((v, c) => { if (v !== null && r.cells[c].textContent !== String(v)) r.cells[c].textContent = v; });
  });
  if (!d.sequences.length) {
    body.innerHTML = '<tr class="empty"><td colspan="7">no sequences: the engine is idle</td></tr>';
  }
}
function drawChart() {
  const now = performance.now();
  while (history.length && history[0].t < now - WINDOW_MS) history.shift();
  // The x axis spans what has been seen, from 10 s up to the last minute.
  const span = Math.min(WINDOW_MS, Math.max(10000, history.length ? now - history[0].t : 0));
  const x = (t) => (34 + 562 * (1 - (now - t) / span)).toFixed(1);
  const y = (v) => (130 - 120 * Math.min(1, Math.max(0, v))).toFixed(1);
  for (const k of ["hit", "used", "cached"]) {
    $(k + "-line").setAttribute("points", history.map((h) => x(h.t) + "," + y(h[k])).join(" "));
  }
  $("chart-t0").textContent = "−" + Math.round(span / 1000) + " s";
}
function render(d) {
  const m = d.metrics, inUse = d.counts.used + d.counts.shared;
  $("model").textContent = `${d.model} · ${d.kv_type} KV · prefix cache ${d.prefix_caching ? "on" : "off"}`;
  $("pool-desc").textContent = `${d.num_blocks} blocks × ${d.block_size} tokens, ${bytes(d.bytes_per_block)} each, ` +
                               `${bytes(d.bytes_total)} in all`;
  $("stat-inuse").textContent = `${inUse} / ${d.num_blocks}`;
  $("stat-inuse-sub").textContent = `blocks in use · ${bytes(inUse * d.bytes_per_block)}`;
  $("stat-cached").textContent = d.counts.cached + d.counts.registered;
  $("stat-hit").textContent = (100 * m.prefix_hit_rate).toFixed(1) + "%";
  $("stat-hit-sub").textContent = `prefix hit rate · ${m.prefix_hit_tokens} of ${m.prompt_tokens} prompt tokens`;
  $("stat-tps").textContent = Math.round(m.tokens_per_second);
  $("stat-running").textContent = m.running;
  $("stat-queue").textContent = `running · ${m.waiting} queued · ${m.requests_finished} done`;
  $("stat-preempt").textContent = m.preemptions;
  $("stat-evict").textContent = `preemptions · ${m.evictions} evictions`;
  drawMap(d);
  drawSequences(d);
  const ids = new Set(d.sequences.map((s) => String(s.id)));  // a finished sequence lets go
  if (!ids.has(pinned)) pinned = null;
  if (!ids.has(hover)) hover = null;
  history.push({ t: performance.now(), hit: m.prefix_hit_rate, used: inUse / d.num_blocks,
                 cached: d.counts.cached / d.num_blocks });
  drawChart();
  highlight();
  document.body.dataset.step = m.steps;
  document.body.dataset.polls = ++polls;
}
function status(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}
async function poll() {
  try {
    if (!paused) {
      const r = await fetch("v1/cache", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const d = await r.json();
      if (!paused) {
        render(d);
        step = d.metrics.steps;
        status("live", `live · step ${step}`);
      }
    }
  } catch (e) {
    status("error", "disconnected (" + e.message + ")");
  }
  setTimeout(poll, interval);
}
$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "resume" : "pause";
  $("pause").setAttribute("aria-pressed", paused);
  if (paused) status("paused", `paused at step ${step}`);
});
const rows = $("seq-rows");
rows.addEventListener("mouseover", (e) => { hover = e.target.closest("tr")?.dataset.seq ?? null; highlight(); });
rows.addEventListener("mouseleave", () => { hover = null; highlight(); });
rows.addEventListener("click", (e) => {
  const id = e.target.closest("tr")?.dataset.seq ?? null;
  pinned = pinned === id ? null : id;
  highlight();
});
poll();
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string_view CachePageHtml() { return kPage; }

std::string CacheJson(const CacheSnapshot& s, const std::string& model_id) {
  using json = nlohmann::json;
  std::string map(s.blocks.size(), '.');
  int32_t registered_in_use = 0;
  for (size_t i = 0; i < s.blocks.size(); ++i) {
    const bool reg = s.registered[i] != 0;
    map[i] = BlockChar(s.blocks[i], reg);
    if (reg && s.blocks[i] != BlockState::kCached) ++registered_in_use;
  }
  json seqs = json::array();
  for (const SequenceSnapshot& q : s.sequences) {
    seqs.push_back({{"id", q.id},
                    {"state", SequencePhaseName(q.phase)},
                    {"prompt_tokens", q.prompt_tokens},
                    {"cached_tokens", q.cached_tokens},
                    {"generated_tokens", q.generated_tokens},
                    {"max_tokens", q.max_tokens},
                    {"computed_tokens", q.computed_tokens},
                    {"preemptions", q.preemptions},
                    {"blocks", q.blocks},
                    {"bytes", q.bytes}});
  }
  json counts = {{"registered", registered_in_use}};
  for (BlockState b : {BlockState::kFree, BlockState::kUsed, BlockState::kShared, BlockState::kCached})
    counts[BlockStateName(b)] = s.Count(b);
  const EngineMetrics& m = s.metrics;
  json j = {
      {"object", "kv_cache"},
      {"model", model_id},
      {"kv_type", s.kv_type},
      {"prefix_caching", s.prefix_caching},
      {"num_blocks", s.num_blocks},
      {"block_size", s.block_size},
      {"bytes_per_block", s.bytes_per_block},
      {"bytes_total", s.bytes_per_block * static_cast<size_t>(s.num_blocks)},
      {"counts", counts},
      {"blocks", map},
      {"refs", s.refs},
      {"sequences", seqs},
      {"metrics",
       {{"running", m.running},
        {"waiting", m.waiting},
        {"requests_finished", m.requests_finished},
        {"prompt_tokens", m.prompt_tokens},
        {"prefix_hit_tokens", m.prefix_hit_tokens},
        {"prefix_hit_rate", m.PrefixHitRate()},
        {"computed_tokens", m.computed_tokens},
        {"generated_tokens", m.generated_tokens},
        {"tokens_per_second", m.GeneratedTokensPerSecond()},
        {"preemptions", m.preemptions},
        {"evictions", m.evictions},
        {"steps", m.steps}}},
  };
  return j.dump();
}

}  // namespace kvc
