// Aperture dashboard: reads /dashboard/api/stats (the JSON of GET /admin/stats and `aperture stats --json`),
// draws it with uPlot, and drives the playground against /v1/images/generations. Plain JS, no build step.
"use strict";

const REFRESH_MS = 60000;
const charts = {};
let config = null;

function $(id) { return document.getElementById(id); }

function text(el, value) { el.textContent = value === null || value === undefined ? "-" : String(value); }

function ms(v) {
  if (v === null || v === undefined) return "-";
  return v < 1000 ? v.toFixed(1) + " ms" : (v / 1000).toFixed(2) + " s";
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) { location.reload(); throw new Error("signed out"); }
  const body = await r.json();
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

// One chart per element; redrawn in place when the data changes.
function chart(id, title, series, data, opts) {
  const el = $(id);
  const width = Math.max(300, el.clientWidth || 460);
  const o = Object.assign({
    title: title,
    width: width,
    height: 220,
    series: [{}].concat(series),
    axes: [{}, { size: 60 }],
    scales: { x: { time: true } },
  }, opts || {});
  if (charts[id]) charts[id].destroy();
  el.textContent = "";
  charts[id] = new uPlot(o, data, el);
}

const COLORS = ["#1a73e8", "#d93025", "#188038", "#f9ab00", "#9334e6", "#12b5cb", "#e8710a", "#5f6368"];

// Lines show their points too: a window with traffic in only a few buckets still shows them.
function line(label, i, extra) {
  return Object.assign({ label: label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
                         points: { show: true, size: 5, fill: COLORS[i % COLORS.length] } }, extra || {});
}

function bars(label, i) {
  return { label: label, stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length] + "55",
           paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } };
}

function fillRows(tableId, rows, cells) {
  const body = $(tableId).querySelector("tbody");
  body.textContent = "";
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const [cls, value] of cells(r)) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      text(td, value);
      tr.appendChild(td);
    }
    if (r.key) tr.dataset.key = r.key;
    body.appendChild(tr);
  }
}

function metricRows(tableId, rows) {
  fillRows(tableId, rows, (r) => [
    ["metric", r.metric], ["value num", r.display], ["target", r.target], ["critical", r.critical],
    ["mark mark-" + r.mark.replace(" ", "-"), r.mark],
  ]);
}

async function refreshRealtime() {
  const s = await getJSON("/dashboard/api/stats?since=1h&step=minute");
  const tech = Object.fromEntries(s.technical.map((r) => [r.key, r]));
  const biz = Object.fromEntries(s.business.map((r) => [r.key, r]));
  text($("rt-error-rate"), tech.error_rate.display);
  text($("rt-avg-time"), biz.avg_generation_time.display);
  text($("rt-hit-rate"), biz.cache_hit_rate.display);
  text($("rt-in-flight"), s.live.in_flight);
  text($("rt-status"), s.live.status);
  text($("rt-requests"), s.totals.requests);
  const status = $("status");
  status.textContent = s.live.status + " · v" + s.live.version;
  status.classList.toggle("down", s.live.status !== "up");
  metricRows("business", s.business);
  metricRows("technical", s.technical);
  const t = s.series.t;
  chart("chart-rt-volume", "Requests per minute", [line("requests", 0), line("failed", 1), line("cache hits", 2)],
        [t, s.series.requests, s.series.failed, s.series.cache_hits]);
  chart("chart-rt-rates", "Error and hit rate (%)", [line("error rate %", 1), line("hit rate %", 2)],
        [t, s.series.error_rate, s.series.hit_rate]);
  text($("updated"), "updated " + new Date(s.window.to_ms).toLocaleTimeString());
  document.body.dataset.realtimeAt = String(s.window.to_ms);
  document.body.dataset.realtimeRequests = String(s.totals.requests);
}

async function refreshHistory() {
  const [since, step] = $("hist-window").value.split(":");
  const s = await getJSON("/dashboard/api/stats?since=" + since + "&step=" + step);
  const x = s.series, t = x.t;
  chart("chart-hist-volume", "Request volume", [bars("requests", 0)], [t, x.requests]);
  const types = Object.keys(x.errors);
  chart("chart-hist-errors", "Errors by type, and error rate (%)",
        types.map((k, i) => line(k, i + 1)).concat([line("error rate %", 0, { scale: "%" , dash: [4, 4] })]),
        [t].concat(types.map((k) => x.errors[k])).concat([x.error_rate]),
        { axes: [{}, { size: 60 }, { side: 1, scale: "%", grid: { show: false } }] });
  chart("chart-hist-cache", "Cache hits and misses, hit rate (%)",
        [line("hits", 2), line("misses", 3), line("hit rate %", 0, { scale: "%", dash: [4, 4] })],
        [t, x.cache_hits, x.cache_misses, x.hit_rate],
        { axes: [{}, { size: 60 }, { side: 1, scale: "%", grid: { show: false } }] });
  chart("chart-hist-safety", "Safety rejections, and rate (%)",
        [line("blocked", 1), line("rejection rate %", 4, { scale: "%", dash: [4, 4] })],
        [t, x.safety_blocked, x.safety_rate],
        { axes: [{}, { size: 60 }, { side: 1, scale: "%", grid: { show: false } }] });
  chart("chart-hist-cost", "Cost saved by the cache (USD)", [bars("USD saved", 2)], [t, x.cost_saved_usd]);
  text($("hist-cost"), "$" + s.totals.cost_saved_usd.toFixed(2));

  const lat = s.performance.latency;
  text($("perf-p50"), ms(lat.p50_ms));
  text($("perf-p95"), ms(lat.p95_ms));
  text($("perf-p99"), ms(lat.p99_ms));
  chart("chart-perf-quantiles", "Generation time p50 / p95 / p99 (ms)",
        [line("p50", 0), line("p95", 3), line("p99", 1)], [t, x.p50_ms, x.p95_ms, x.p99_ms]);
  const hist = s.performance.cache_hit_latency.histogram;
  const idx = hist.map((_, i) => i);
  chart("chart-perf-hits", "Cache-hit latency histogram (requests per bucket)", [bars("cache hits", 2)],
        [idx, hist.map((b) => b.count)],
        { scales: { x: { time: false, range: [-0.5, Math.max(0.5, idx.length - 0.5)] } },
          axes: [{ splits: () => idx,
                   values: (u, ticks) => ticks.map((i) => {
                     const b = hist[i]; return b ? (b.le_ms === null ? "more" : "≤" + b.le_ms + " ms") : ""; }) },
                 { size: 60 }] });
  fillRows("models", s.performance.models, (m) => [
    ["", m.model], ["num", m.count], ["num", ms(m.avg_ms)], ["num", ms(m.p50_ms)], ["num", ms(m.p95_ms)], ["num", ms(m.p99_ms)],
  ]);
  fillRows("accounts", s.performance.accounts, (a) => [
    ["", a.label], ["", a.state.kind || JSON.stringify(a.state)], ["num", a.calls], ["num", a.successes],
    ["num", a.failures], ["num", a.quota_hits],
  ]);
  document.body.dataset.historyAt = String(s.window.to_ms);
}

async function refreshAll() {
  try {
    await refreshRealtime();
    await refreshHistory();
    $("load-error").hidden = true;
  } catch (e) {
    $("load-error").hidden = false;
    text($("load-error"), "Could not load the statistics: " + e.message);
    $("status").textContent = "unreachable";
    $("status").classList.add("down");
  }
}

function options(select, values, chosen) {
  for (const v of values) {
    const o = document.createElement("option");
    o.value = v; o.textContent = v; if (v === chosen) o.selected = true;
    select.appendChild(o);
  }
}

async function setupPlayground() {
  config = await getJSON("/dashboard/api/config");
  options($("pg-model"), config.models, config.default_model);
  options($("pg-size"), config.sizes, "1024x1024");
  options($("pg-quality"), config.qualities, "auto");
  options($("pg-threshold"), config.thresholds, null);
  if (config.demo_key) {
    $("pg-key").value = config.demo_key;
    text($("pg-note"), "Demo mode: the demo client key is filled in. Requests go to /v1/images/generations like any client's.");
  } else {
    text($("pg-note"), "Requests go to /v1/images/generations with the client key you type (kept in this page only).");
  }
  if (!config.playground_url) {
    text($("pg-note"), "This dashboard is served on the admin listener (admin_listen), which has no client API: use the playground from the gateway's public address.");
    $("pg-go").disabled = true;
  }
  $("pg-form").addEventListener("submit", (ev) => { ev.preventDefault(); generate(); });
}

async function generate() {
  const body = {
    model: $("pg-model").value,
    prompt: $("pg-prompt").value,
    size: $("pg-size").value,
    quality: $("pg-quality").value,
    n: Number($("pg-n").value) || 1,
    response_format: "b64_json",
  };
  if ($("pg-threshold").value) body.safety_threshold = $("pg-threshold").value;
  const result = $("pg-result");
  const images = $("pg-images");
  images.textContent = "";
  $("pg-error").hidden = true;
  text($("pg-revised"), "");
  text($("pg-status"), "generating…");
  for (const id of ["pg-request-id", "pg-cache", "pg-time", "pg-policy"]) text($(id), "");
  result.hidden = false;
  $("pg-go").disabled = true;
  const started = performance.now();
  try {
    const r = await fetch(config.playground_url, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + $("pg-key").value },
      body: JSON.stringify(body),
    });
    const elapsed = performance.now() - started;
    const answer = await r.text();
    text($("pg-status"), r.status + " " + r.statusText);
    text($("pg-request-id"), r.headers.get("x-request-id"));
    text($("pg-cache"), r.headers.get("x-aperture-cache"));
    text($("pg-time"), ms(elapsed));
    text($("pg-policy"), r.headers.get("x-aperture-policy") || "(not reported by this gateway)");
    let json = null;
    try { json = JSON.parse(answer); } catch (_) { /* shown raw below */ }
    if (!r.ok || !json || !Array.isArray(json.data)) {
      $("pg-error").hidden = false;
      text($("pg-error"), json ? JSON.stringify(json, null, 2) : answer);
      return;
    }
    json.data.forEach((d, i) => {
      const img = document.createElement("img");
      img.alt = "generated image " + (i + 1);
      img.className = "pg-image";
      const mime = "image/" + (json.output_format || "png");
      img.src = d.url || ("data:" + mime + ";base64," + d.b64_json);
      images.appendChild(img);
      if (d.revised_prompt) text($("pg-revised"), "Revised prompt: " + d.revised_prompt);
    });
  } catch (e) {
    text($("pg-status"), "the request failed: " + e.message);
  } finally {
    $("pg-go").disabled = false;
  }
}

window.addEventListener("DOMContentLoaded", () => {
  $("hist-window").addEventListener("change", () => refreshHistory().catch((e) => text($("load-error"), e.message)));
  setupPlayground().catch((e) => text($("pg-note"), "Playground unavailable: " + e.message));
  refreshAll();
  setInterval(refreshAll, REFRESH_MS);
});
