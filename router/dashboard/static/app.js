// Tandem dashboard: live figures over server-sent events, the policy form, history and rollback.
// Plain JS; charts with uPlot (committed under static/vendor). Everything it changes goes through
// the router's Admin API (/api/policy, /api/rollback), with the admin token the operator enters.
"use strict";

const PLACEMENTS = ["edge", "cloud", "tandem"];
const COLORS = {edge: "#2e7d32", cloud: "#1565c0", tandem: "#ef6c00", slo: "#b00020", spend: "#6a1b9a", energy: "#00838f"};
const MAX_POINTS = 600;
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "—" : Number(v).toFixed(d);
let latest = null;

// ---------------------------------------------------------------- charts

function makeChart(el, series, title) {
  const data = [[], ...series.map(() => [])];
  const opts = {
    title, width: Math.max(360, el.clientWidth || 520), height: 180,
    scales: {x: {time: true}},
    series: [{}, ...series.map((s) => ({label: s.label, stroke: s.color, width: 1.5, dash: s.dash, scale: s.scale || "y"}))],
    axes: [{}, {scale: "y"}, ...(series.some((s) => s.scale === "y2") ? [{scale: "y2", side: 1}] : [])],
  };
  return {plot: new uPlot(opts, data, el), data};
}

function push(chart, t, values) {
  chart.data[0].push(t);
  values.forEach((v, i) => chart.data[i + 1].push(v === undefined ? null : v));
  if (chart.data[0].length > MAX_POINTS) chart.data.forEach((a) => a.shift());
  chart.plot.setData(chart.data);
}

const charts = {};
function initCharts() {
  charts.rps = makeChart($("chart-rps"), PLACEMENTS.map((p) => ({label: p, color: COLORS[p]})), "requests/s by placement");
  charts.ttft = makeChart($("chart-ttft"), [...PLACEMENTS.map((p) => ({label: `${p} p99`, color: COLORS[p]})),
    {label: "SLO", color: COLORS.slo, dash: [6, 4]}], "TTFT p99 (ms) against the SLO");
  charts.spend = makeChart($("chart-spend"), [{label: "cloud $", color: COLORS.spend},
    {label: "device J", color: COLORS.energy, scale: "y2"}], "cumulative spend and device energy");
}

// ---------------------------------------------------------------- live view

function rows(tbody, items) {
  tbody.innerHTML = items.map((cells) => "<tr>" + cells.map((c) => `<td>${c}</td>`).join("") + "</tr>").join("");
}

function render(v) {
  latest = v;
  $("policy-version").textContent = "v" + v.policy_version;
  $("inflight").textContent = fmt(v.inflight, 0);
  const total = Object.values(v.rps || {}).reduce((a, b) => a + b, 0);
  $("rps-total").textContent = fmt(total);
  for (const p of PLACEMENTS) $("rps-" + p).textContent = fmt((v.rps || {})[p] || 0);
  rows($("reasons").tBodies[0], (v.reasons || []).map((r) => [r.placement, r.rule, fmt(r.rps)]));
  $("slo-ttft").textContent = v.slo.ttft_ms ? fmt(v.slo.ttft_ms, 0) + " ms" : "none";
  $("slo-token").textContent = v.slo.token_ms ? fmt(v.slo.token_ms, 0) + " ms" : "none";
  const lat = v.latency || {ttft_ms: {}, token_ms: {}};
  const over = (x, slo) => (slo && x !== null && x > slo) ? ` class="over"` : "";
  $("latency").tBodies[0].innerHTML = PLACEMENTS.filter((p) => lat.ttft_ms[p] || lat.token_ms[p]).map((p) => {
    const t = lat.ttft_ms[p] || {}, k = lat.token_ms[p] || {};
    const cell = (x, slo) => `<td${over(x, slo)}>${fmt(x, 1)}</td>`;
    return `<tr><td>${p}</td>${cell(t.p50, v.slo.ttft_ms)}${cell(t.p90, v.slo.ttft_ms)}${cell(t.p99, v.slo.ttft_ms)}` +
      `${cell(k.p50, v.slo.token_ms)}${cell(k.p90, v.slo.token_ms)}${cell(k.p99, v.slo.token_ms)}</tr>`;
  }).join("");
  $("tandem-acceptance").textContent = fmt(v.tandem.acceptance);
  $("tandem-tpr").textContent = fmt(v.tandem.tokens_per_round);
  $("tandem-gamma").textContent = fmt(v.tandem.gamma, 1);
  rows($("pools").tBodies[0], (v.pools || []).map((p) => [p.name, p.accelerator, p.replicas, p.queue,
    fmt(p.price_per_replica_hour_usd), p.cost_per_1k_tokens_usd === null ? "—" : "$" + fmt(p.cost_per_1k_tokens_usd, 5),
    fmt(p.tokens_per_s, 1)]));
  renderDevices(v.devices);
  $("spend").textContent = "$" + fmt(v.spend_usd, 6);
  $("energy").textContent = fmt(v.device_energy_j, 1) + " J";
  const now = Date.now() / 1000;
  push(charts.rps, now, PLACEMENTS.map((p) => (v.rps || {})[p] || 0));
  push(charts.ttft, now, [...PLACEMENTS.map((p) => (lat.ttft_ms[p] || {}).p99 ?? null), v.slo.ttft_ms || null]);
  push(charts.spend, now, [v.spend_usd, v.device_energy_j]);
  renderShadow(v.shadow || {active: false});
}

// ---------------------------------------------------------------- devices
// The live view carries a summary and the top few devices by work, not every device: a fleet of
// thousands is found through the search box (/api/devices).

const esc = (x) => String(x).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const count = (n) => Number(n).toLocaleString("en-US");

function deviceCells(d) {
  return [esc(d.id),
    `<span class="bar${d.battery_percent < 20 ? " low" : ""}" style="width:${Math.round(d.battery_percent / 2)}px"></span>${fmt(d.battery_percent, 0)}%`,
    d.charging ? "⚡ yes" : "no", fmt(100 * d.share, 0) + "%", esc(d.thermal), fmt(d.rtt_ms, 1), d.queue];
}

function bins(tbody, hist) {
  const most = Math.max(1, ...hist.map((b) => b.count));
  rows(tbody, hist.map((b) => [esc(b.label),
    `<span class="bar" style="width:${b.count ? Math.max(1, 100 * b.count / most) : 0}%"></span>`, count(b.count)]));
  tbody.querySelectorAll("td:nth-child(2)").forEach((td) => td.classList.add("b"));
}

function renderDevices(s) {
  if (!s) return;
  $("devices-count").textContent = count(s.count);
  $("devices-charging").textContent = count(s.charging);
  $("devices-thermal").innerHTML = Object.entries(s.thermal).filter(([, n]) => n)
    .map(([k, n]) => `<span>${esc(k)} <b>${count(n)}</b></span>`).join("") || "—";
  bins($("battery-bins").tBodies[0], s.battery);
  bins($("rtt-bins").tBodies[0], s.rtt_ms);
  $("devices-top-n").textContent = s.top.length;
  rows($("devices").tBodies[0], s.top.map(deviceCells));
  if ($("device-search").value.trim()) searchDevices();  // the results follow the live figures
}

let searchSeq = 0, searchTimer = null;

async function searchDevices() {
  const q = $("device-search").value.trim(), seq = ++searchSeq;
  $("err-device-search").textContent = "";
  if (!q) {
    $("device-results").tBodies[0].innerHTML = "";
    $("device-search-status").textContent = "";
    return;
  }
  const resp = await fetch(`/api/devices?q=${encodeURIComponent(q)}&limit=50`);
  const out = await resp.json().catch(() => null);
  if (seq !== searchSeq) return;  // a newer search is under way
  if (!resp.ok) {
    $("err-device-search").textContent = out ? `${out.field}: ${out.message}` : `HTTP ${resp.status}`;
    return;
  }
  rows($("device-results").tBodies[0], out.devices.map(deviceCells));
  $("device-search-status").textContent = out.matches > out.devices.length
    ? `the first ${count(out.devices.length)} of ${count(out.matches)} matching` : `${count(out.matches)} matching`;
}

// ---------------------------------------------------------------- shadow

function renderShadow(r) {
  if (!r.active) {
    $("shadow-state").textContent = "no shadow running";
    return;
  }
  const val = (x) => (typeof x === "object" ? sortedJson(x) : String(x));
  const changed = policy ? Object.entries(r.policy).filter(([k, x]) => policy.policy[k] !== undefined && val(policy.policy[k]) !== val(x))
    .map(([k, x]) => `${k} = ${val(x)}`).join(", ") : "";
  $("shadow-state").textContent = `running since ${new Date(r.started_unix_s * 1000).toLocaleTimeString()} by ${r.caller}` +
    (r.note ? ` (${r.note})` : "") + (changed ? `: ${changed}` : "");
  const n = Number(r.decisions);
  $("shadow-decisions").textContent = n;
  $("shadow-agreement").textContent = n ? fmt(100 * Number(r.same_placement) / n, 0) + "%" : "—";
  $("shadow-cost").textContent = `$${fmt(r.live.cost_usd, 6)} → $${fmt(r.shadow.cost_usd, 6)}`;
  $("shadow-ttft").textContent = `${fmt(r.live.ttft_ms, 0)} → ${fmt(r.shadow.ttft_ms, 0)}`;
  rows($("shadow-diffs").tBodies[0], (r.differences || []).map((d) => [d.live, d.shadow, d.count]));
}

async function startShadow() {
  clearErrors();
  const resp = await fetch("/api/shadow", {method: "POST", headers: headers(),
    body: JSON.stringify({policy: changes(), note: $("note").value})});
  const out = await resp.json();
  if (!resp.ok) { showError(out); return; }
  $("policy-status").textContent = "shadow started";
  renderShadow(out);
}

async function stopShadow() {
  const resp = await fetch("/api/shadow", {method: "DELETE", headers: headers()});
  const out = await resp.json();
  if (!resp.ok) { showError(out); return; }
  $("policy-status").textContent = `shadow stopped after ${out.decisions} decisions`;
  renderShadow({active: false});
}

// ---------------------------------------------------------------- what-if

const candidates = [];

function renderCandidates() {
  const tbody = $("candidates").tBodies[0];
  tbody.innerHTML = "";
  candidates.forEach((c, i) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td></td><td></td><td><button type="button">remove</button></td>`;
    tr.children[0].textContent = c.name;
    tr.children[1].textContent = Object.entries(c.policy).map(([k, v]) => `${k} = ${typeof v === "object" ? sortedJson(v) : v}`).join(", ") || "(none)";
    tr.querySelector("button").onclick = () => { candidates.splice(i, 1); renderCandidates(); };
    tbody.appendChild(tr);
  });
}

function addCandidate() {
  const name = $("candidate-name").value.trim() || `candidate ${candidates.length + 1}`;
  candidates.push({name, policy: changes()});
  $("candidate-name").value = "";
  renderCandidates();
}

function loadIntoForm(name) {
  const c = candidates.find((x) => x.name === name);
  if (!c) return;
  buildForm();
  for (const [k, v] of Object.entries(c.policy)) {
    if (k === "pool_prices") {
      document.querySelectorAll("input.pool-price").forEach((el) => { el.value = v[el.dataset.pool] ?? ""; });
      continue;
    }
    const el = $("f-" + k);
    if (el.type === "checkbox") el.checked = Boolean(v); else el.value = v;
  }
  $("policy-status").textContent = `the form holds ${name}: review, add a note, apply`;
}

function plot(points) {
  const svg = $("whatif-plot"), W = 560, H = 300, pad = 48;
  const xs = points.map((p) => p.cloud_cost_usd), ys = points.map((p) => 100 * p.slo_attainment);
  const x0 = Math.min(...xs) * 0.9, x1 = Math.max(...xs) * 1.1 || 1, y0 = Math.min(...ys) - 1, y1 = Math.min(100, Math.max(...ys) + 1);
  const X = (x) => pad + (W - 2 * pad) * (x - x0) / ((x1 - x0) || 1), Y = (y) => H - pad - (H - 2 * pad) * (y - y0) / ((y1 - y0) || 1);
  let out = `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#888"/>` +
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#888"/>` +
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">cloud cost ($)</text>` +
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-size="12">SLO attainment (%)</text>` +
    `<text x="${pad}" y="${H - pad + 16}" font-size="10">${x0.toFixed(4)}</text><text x="${W - pad}" y="${H - pad + 16}" font-size="10" text-anchor="end">${x1.toFixed(4)}</text>` +
    `<text x="${pad - 4}" y="${H - pad}" font-size="10" text-anchor="end">${y0.toFixed(1)}</text><text x="${pad - 4}" y="${pad + 4}" font-size="10" text-anchor="end">${y1.toFixed(1)}</text>`;
  points.forEach((p) => {
    const harm = p.devices_pushed_below_reserve, r = 6 + 3 * Math.min(harm, 6);
    const live = p.name === "live";
    out += `<circle class="point${live ? " live" : ""}" cx="${X(p.cloud_cost_usd)}" cy="${Y(100 * p.slo_attainment)}" r="${r}" ` +
      `fill="${live ? "#1f3a5f" : "#ef6c00"}" fill-opacity="0.7" stroke="${harm ? "#b00020" : "none"}" stroke-width="2"/>` +
      `<text x="${X(p.cloud_cost_usd) + r + 3}" y="${Y(100 * p.slo_attainment) + 4}" font-size="11">${live ? "★ live" : p.name}` +
      `${harm ? ` (${harm} below reserve)` : ""}</text>`;
  });
  svg.innerHTML = out;
}

async function runWhatif() {
  $("err-whatif").textContent = "";
  const body = {source: $("whatif-source").value, candidates};
  if (body.source === "records") {
    const f = $("whatif-file").files[0];
    if (!f) { $("err-whatif").textContent = "choose a requests.jsonl file"; return; }
    body.records = await f.text();
  }
  $("whatif-run").disabled = true;
  try {
    const resp = await fetch("/api/whatif", {method: "POST", headers: headers(), body: JSON.stringify(body)});
    const out = await resp.json().catch(() => null);  // a refusal may not be JSON (413: too large)
    if (!resp.ok) {
      $("err-whatif").textContent = out ? `${out.field}: ${out.message}` : `HTTP ${resp.status} ${resp.statusText}`;
      return;
    }
    plot(out.points);
    const tbody = $("whatif-results").tBodies[0];
    tbody.innerHTML = "";
    for (const p of out.points) {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td></td><td>${fmt(p.cloud_cost_usd, 4)}</td><td>${fmt(100 * p.slo_attainment, 1)}%</td>` +
        `<td>${p.devices_pushed_below_reserve}</td><td>${fmt(p.device_energy_j, 0)}</td><td>${p.refused}</td><td></td>`;
      tr.children[0].textContent = p.name === "live" ? "★ live" : p.name;
      if (p.name !== "live") {
        const b = document.createElement("button");
        b.textContent = "load into the form";
        b.className = "load-candidate";
        b.dataset.name = p.name;
        b.onclick = () => loadIntoForm(p.name);
        tr.children[6].appendChild(b);
      }
      tbody.appendChild(tr);
    }
  } finally {
    $("whatif-run").disabled = false;
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("conn").textContent = "live"; $("conn").className = "ok"; };
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "bad"; };
  es.onmessage = (e) => render(JSON.parse(e.data));
}

// ---------------------------------------------------------------- policy

let policy = null;  // {version, policy: {...}}

let poolNames = [];  // pools the fleet reports (for the price overrides)

function buildForm() {
  const form = $("policy-form");
  form.innerHTML = "";
  for (const [name, value] of Object.entries(policy.policy)) {
    if (name === "pool_prices") {
      const reported = Object.fromEntries(((latest && latest.pools) || []).map((p) => [p.name, p.reported_price_per_replica_hour_usd]));
      for (const pool of [...new Set([...poolNames, ...Object.keys(value)])].sort()) {
        const div = document.createElement("div");
        div.className = "field";
        div.id = `field-pool_prices.${pool}`;
        const v = value[pool] === undefined ? "" : value[pool];
        div.innerHTML = `<label for="f-pool_prices.${pool}">price of pool ${pool} ($/replica-h; empty: as reported)</label>` +
          `<input id="f-pool_prices.${pool}" data-pool="${pool}" class="pool-price" type="number" step="any" value="${v}" ` +
          `placeholder="${reported[pool] ?? ""}"><span class="err" id="err-pool_prices.${pool}"></span>`;
        form.appendChild(div);
      }
      continue;
    }
    const div = document.createElement("div");
    div.className = "field";
    div.id = "field-" + name;
    const input = typeof value === "boolean"
      ? `<input id="f-${name}" name="${name}" type="checkbox"${value ? " checked" : ""}>`
      : `<input id="f-${name}" name="${name}" type="number" step="any" value="${value}">`;
    div.innerHTML = `<label for="f-${name}">${name.replaceAll("_", " ")}</label>${input}<span class="err" id="err-${name}"></span>`;
    form.appendChild(div);
  }
  form.oninput = () => { $("apply").disabled = true; $("diff").textContent = ""; };
}

function formValue(name) {
  const el = $("f-" + name);
  if (el.type === "checkbox") return el.checked;
  return el.value.trim() === "" ? NaN : Number(el.value);
}

function formPrices() {
  const out = {};
  document.querySelectorAll("input.pool-price").forEach((el) => {
    if (el.value.trim() !== "") out[el.dataset.pool] = Number(el.value);
  });
  return out;
}

const sortedJson = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).sort()));

function changes() {
  const out = {};
  for (const [name, old] of Object.entries(policy.policy)) {
    if (name === "pool_prices") {
      const now = formPrices();
      if (sortedJson(now) !== sortedJson(old)) out[name] = now;
      continue;
    }
    const now = formValue(name);
    if (typeof old === "boolean" ? now !== old : !(Number(now) === Number(old))) out[name] = Number.isNaN(now) ? $("f-" + name).value : now;
  }
  return out;
}

function clearErrors() {
  document.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll(".field.invalid").forEach((e) => e.classList.remove("invalid"));
}

function showError(body) {
  const field = (body.field || "").replace(/^policy\./, "");
  const err = $("err-" + field);
  if (err) {
    err.textContent = body.message;
    const box = $("field-" + field);
    if (box) box.classList.add("invalid");
  } else {
    $("policy-status").textContent = `${body.status}: ${body.field ? body.field + ": " : ""}${body.message}`;
  }
}

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("token").value) h["X-Tandem-Admin-Token"] = $("token").value;
  if ($("who").value) h["X-Tandem-Caller"] = $("who").value;
  return h;
}

async function loadPolicy() {
  policy = await (await fetch("/api/policy")).json();
  const live = await (await fetch("/api/live")).json();
  latest = latest || live;
  poolNames = (live.pools || []).map((p) => p.name);
  buildForm();
  $("apply").disabled = true;
  await loadHistory();
}

function review() {
  clearErrors();
  const c = changes();
  const show = (v) => (typeof v === "object" ? sortedJson(v) : v);
  const lines = Object.entries(c).map(([k, v]) => `${k}: ${show(policy.policy[k])} → ${show(v)}`);
  $("diff").textContent = lines.length ? lines.join("\n") : "no changes";
  $("apply").disabled = !lines.length;
}

async function apply() {
  clearErrors();
  const body = {policy: changes(), note: $("note").value, expected_version: Number(policy.version)};
  const resp = await fetch("/api/policy", {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const out = await resp.json();
  if (!resp.ok) { showError(out); return; }
  $("policy-status").textContent = `applied: v${out.version} by ${out.caller}`;
  $("diff").textContent = "";
  $("note").value = "";
  await loadPolicy();
}

async function rollback(version) {
  clearErrors();
  const resp = await fetch("/api/rollback", {method: "POST", headers: headers(),
    body: JSON.stringify({version, note: $("note").value})});
  const out = await resp.json();
  if (!resp.ok) { showError(out); return; }
  $("policy-status").textContent = `rolled back to v${version}: now v${out.version}`;
  $("note").value = "";
  await loadPolicy();
}

async function loadHistory() {
  const h = await (await fetch("/api/history")).json();
  const tbody = $("history").tBodies[0];
  tbody.innerHTML = "";
  for (const v of h.versions) {
    const tr = document.createElement("tr");
    const when = new Date(v.created_unix_s * 1000).toLocaleString();
    tr.innerHTML = `<td>v${v.version}</td><td>${when}</td><td>${v.caller}</td><td>${v.source}` +
      `${v.restored_version && v.restored_version !== "0" ? " of v" + v.restored_version : ""}</td><td></td><td></td>`;
    tr.children[4].textContent = v.note;
    if (String(v.version) !== String(policy.version)) {
      const b = document.createElement("button");
      b.textContent = "roll back to this";
      b.className = "rollback";
      b.dataset.version = v.version;
      b.onclick = () => rollback(Number(v.version));
      tr.children[5].appendChild(b);
    }
    tbody.appendChild(tr);
  }
}

window.addEventListener("load", async () => {
  initCharts();
  connect();
  $("review").onclick = review;
  $("apply").onclick = apply;
  $("shadow-start").onclick = startShadow;
  $("shadow-stop").onclick = stopShadow;
  $("candidate-add").onclick = addCandidate;
  $("whatif-run").onclick = runWhatif;
  $("device-search").oninput = () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchDevices, 200); };
  await loadPolicy();
});
