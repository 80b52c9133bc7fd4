// The metrics dashboard: picks metrics, draws their last 24 h with uPlot (value, 1-hour
// average, alert line), lists the active alerts and the volatility ranking. Every call
// sends the app token the user typed (kept in this tab's sessionStorage only).
"use strict";

const state = { token: sessionStorage.getItem("stride-token") || "", metrics: [], picked: new Set(), charts: new Map() };
const params = new URLSearchParams(location.search);
(params.getAll("metric") || []).forEach((key) => state.picked.add(key));

const $ = (selector) => document.querySelector(selector);
const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString(undefined, { maximumFractionDigits: 3 }));

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body && body.detail ? body.detail : `HTTP ${response.status}`);
  return body;
}

function setStatus(text) { $("#status").textContent = text; }

async function loadCatalog() {
  state.metrics = await api("/v1/metrics");
  renderPicker();
}

function renderPicker() {
  const list = $("#metric-list");
  const filter = $("#filter").value.trim().toLowerCase();
  list.replaceChildren();
  for (const metric of state.metrics) {
    if (filter && !metric.key.toLowerCase().includes(filter)) continue;
    const item = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = metric.key;
    box.checked = state.picked.has(metric.key);
    box.addEventListener("change", () => {
      if (box.checked) state.picked.add(metric.key); else state.picked.delete(metric.key);
      refreshCharts();
    });
    label.append(box, " ", metric.key);
    label.title = metric.description;
    item.append(label);
    list.append(item);
  }
}

// Missed minutes are gaps: a null between two points more than one step apart.
function columns(series) {
  const step = series.step_minutes * 60;
  const xs = [], values = [], baselines = [], lines = [];
  let previous = null;
  for (const point of series.points) {
    const t = Date.parse(point.minute) / 1000;
    if (previous !== null && t - previous > step) {
      xs.push(previous + step); values.push(null); baselines.push(null); lines.push(null);
    }
    xs.push(t); values.push(point.value); baselines.push(point.baseline); lines.push(point.threshold);
    previous = t;
  }
  return [xs, values, baselines, lines];
}

function chartFor(key) {
  let chart = state.charts.get(key);
  if (chart) return chart;
  const node = $("#chart-template").content.firstElementChild.cloneNode(true);
  node.dataset.metric = key;
  node.querySelector("h3").textContent = key;
  node.querySelector("form").addEventListener("submit", (event) => {
    event.preventDefault();
    subscribe(key, node);
  });
  $("#charts").append(node);
  chart = { node, plot: null };
  state.charts.set(key, chart);
  return chart;
}

async function drawChart(key) {
  const chart = chartFor(key);
  const series = await api(`/v1/metrics/series?metric=${encodeURIComponent(key)}`);
  const factor = series.metric.fire_factor;
  chart.node.querySelector(".description").textContent =
    `${series.metric.description} (${series.metric.unit}); ${series.points.length} samples since ${new Date(series.start).toLocaleString()}`;
  const data = columns(series);
  const width = Math.max(320, chart.node.clientWidth - 24);
  const options = {
    width,
    height: 220,
    scales: { x: { time: true } },
    series: [
      {},
      { label: series.metric.unit, stroke: "#60a5fa", width: 1 },
      { label: `${series.metric.window_minutes} min average`, stroke: "#15803d", width: 2.5, dash: [8, 4] },
      { label: `${factor}× line`, stroke: "#dc2626", width: 2, dash: [3, 3] },
    ],
    axes: [{}, { size: 60 }],
  };
  if (chart.plot) chart.plot.destroy();
  chart.plot = new uPlot(options, data, chart.node.querySelector(".plot"));
}

async function refreshCharts() {
  $("#empty-hint").hidden = state.picked.size > 0;
  for (const [key, chart] of state.charts) {
    if (!state.picked.has(key)) { if (chart.plot) chart.plot.destroy(); chart.node.remove(); state.charts.delete(key); }
  }
  const url = new URL(location.href);
  url.searchParams.delete("metric");
  for (const key of state.picked) url.searchParams.append("metric", key);
  history.replaceState(null, "", url);
  await Promise.all([...state.picked].map((key) => drawChart(key).catch((e) => setStatus(`${key}: ${e.message}`))));
  markFiring();
  showRanks();
}

let firing = new Set();

function markFiring() {
  for (const [key, chart] of state.charts) chart.node.classList.toggle("firing", firing.has(key));
}

async function loadAlerts() {
  const alerts = await api("/v1/metrics/alerts?state=active");
  firing = new Set(alerts.map((a) => a.metric_key));
  const body = $("#alerts tbody");
  body.replaceChildren(...alerts.map((a) => row([a.metric_key, new Date(a.fired_minute).toLocaleTimeString(), fmt(a.fired_value), fmt(a.threshold)], [1, 2, 3])));
  $("#no-alerts").hidden = alerts.length > 0;
  markFiring();
}

let ranks = new Map(); // metric key -> its entry in the ranking (the top 1000)

function showRanks() {
  const by = $("#rank-by").value;
  for (const [key, chart] of state.charts) {
    const entry = ranks.get(key);
    chart.node.querySelector(".rank").textContent = entry
      ? `Volatility rank #${entry.rank} (${by === "cv" ? "CV" : "std dev"} ${fmt(by === "cv" ? entry.cv : entry.stddev)})`
      : "Volatility rank: not in the top 1000";
  }
}

async function loadRanking() {
  const by = $("#rank-by").value;
  const ranking = await api(`/v1/metrics/ranking?by=${by}&limit=1000`);
  ranks = new Map(ranking.metrics.map((m) => [m.key, m]));
  showRanks();
  $("#rank-figure").textContent = by === "cv" ? "CV" : "std dev";
  const body = $("#ranking tbody");
  body.replaceChildren(...ranking.metrics.slice(0, 20).map((m) => {
    const tr = row([m.rank, m.key, fmt(by === "cv" ? m.cv : m.stddev)], [0, 2]);
    tr.title = `mean ${fmt(m.mean)} ${m.unit}, std dev ${fmt(m.stddev)}, ${m.count} samples`;
    return tr;
  }));
}

function row(cells, numeric) {
  const tr = document.createElement("tr");
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric.includes(i)) td.className = "num";
    tr.append(td);
  });
  return tr;
}

async function subscribe(key, node) {
  const result = node.querySelector(".subscribe-result");
  const input = node.querySelector("input[type=url]");
  result.className = "subscribe-result";
  try {
    const sub = await api("/v1/metrics/subscriptions", { method: "POST", body: JSON.stringify({ metric: key, webhook_url: input.value }) });
    result.textContent = `Subscribed (${sub.id.slice(0, 8)}): one webhook when it fires, one when it calms down.`;
  } catch (e) {
    result.className = "subscribe-result error";
    result.textContent = e.message;
  }
}

async function refresh() {
  if (!state.token) { setStatus("Type an app token to see the metrics."); return; }
  try {
    setStatus("");
    await loadCatalog();
    await Promise.all([loadAlerts(), loadRanking(), refreshCharts()]);
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    setStatus(e.message);
  }
}

$("#token").value = state.token;
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("stride-token", state.token);
  refresh();
});
$("#filter").addEventListener("input", renderPicker);
$("#rank-by").addEventListener("change", () => loadRanking().catch((e) => setStatus(e.message)));
refresh();
setInterval(refresh, 60_000); // samples arrive once a minute
