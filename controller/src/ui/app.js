// Sluice dashboard. Plain browser JavaScript, no dependencies, no build step.
// The token lives in this tab's sessionStorage and travels only in the Authorization header.
"use strict";

const TOKEN_KEY = "sluice.token";
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let current = null; // { ns, name, view, canCommand, samples, history, abort }
let listAbort = null;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
  if (r.status === 401) throw new Unauthorized("token not accepted");
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) throw new Error((body && body.message) || ("HTTP " + r.status));
  return body;
}

// Server-sent events over fetch (EventSource cannot send a header). Calls onEvent(name, data).
async function stream(path, onEvent, signal) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" }, signal, cache: "no-store" });
  if (r.status === 401) throw new Unauthorized("token not accepted");
  if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + 2);
      let name = "message"; const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

// Reconnects a stream with backoff until `signal` aborts.
async function follow(path, onEvent, signal) {
  let delay = 1000;
  while (!signal.aborted) {
    try { await stream(path, (n, d) => { delay = 1000; onEvent(n, d); }, signal); }
    catch (e) {
      if (e instanceof Unauthorized) { logout("Your token is no longer accepted."); return; }
      if (signal.aborted) return;
    }
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

function show(section) {
  for (const id of ["login", "list", "detail"]) $(id).hidden = id !== section;
  $("logout").hidden = section === "login";
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStreams();
  // The next person to sign in starts at the list, not at the last one's rollout.
  if (location.hash) history.replaceState(null, "", location.pathname);
  $("who").textContent = "";
  $("login-error").textContent = message || "";
  show("login");
  $("token").value = "";
  $("token").focus();
}

function stopStreams() {
  if (listAbort) { listAbort.abort(); listAbort = null; }
  if (current && current.abort) current.abort.abort();
  current = null;
}

// ---- formatting -------------------------------------------------------------
function age(from) {
  if (!from) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(from)) / 1000));
  if (s < 90) return s + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}
function time(t) { return t ? new Date(t).toLocaleTimeString() : ""; }
function num(v) {
  if (v === undefined || v === null || !isFinite(v)) return "no value";
  const a = Math.abs(v);
  return a !== 0 && (a < 0.001 || a >= 1e6) ? v.toExponential(2) : String(Math.round(v * 10000) / 10000);
}
function stepText(v) {
  if (!v.totalSteps) return "";
  const running = ["Progressing", "Paused", "Initializing"].includes(v.phase) && v.step < v.totalSteps;
  return (running ? v.step + 1 : Math.min(v.step, v.totalSteps)) + " / " + v.totalSteps;
}
// Why a person is needed, or "" when nobody is.
function attention(v) {
  if (v.blocked) return "Blocked: " + v.blocked.message;
  if (v.phase === "Paused") return "Paused, waiting for a human" + (v.message ? ": " + v.message : "");
  if (v.paused && ["Progressing", "Paused"].includes(v.phase)) return "Paused by the spec";
  return "";
}
function revision(v) { return v.canaryRevision ? v.stableRevision + " \u2192 " + v.canaryRevision : (v.stableRevision || ""); }

// ---- list page --------------------------------------------------------------
// Rows are updated in place, keyed by rollout: replacing them on every event would destroy the
// link under a pointer between mousedown and click, and the click would be lost.
function newRow(v, key) {
  const link = el("a", { href: "#/" + encodeURIComponent(v.namespace) + "/" + encodeURIComponent(v.name) }, key);
  const tr = el("tr", { "data-rollout": key }, el("th", { scope: "row" }, link));
  for (let i = 0; i < 6; i++) tr.append(el("td"));
  return tr;
}
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function updateRow(tr, v) {
  const need = attention(v);
  tr.classList.toggle("needs", !!need);
  const [phase, weight, step, rev, started, mark] = tr.querySelectorAll("td");
  setText(phase, v.phase);
  phase.className = "phase phase-" + v.phase;
  setText(weight, v.weight + "%");
  setText(step, stepText(v));
  setText(rev, revision(v));
  setText(started, age(v.startedAt));
  const strong = mark.querySelector("strong");
  if (!need) {
    if (strong) strong.remove();
  } else if (strong) {
    strong.title = need;
  } else {
    mark.append(el("strong", { class: "mark", title: need }, "needs you"));
  }
}
function renderList(list) {
  const rows = $("rows");
  const old = new Map(Array.from(rows.children, (tr) => [tr.dataset.rollout, tr]));
  let prev = null;
  for (const v of list.items) {
    const key = v.namespace + "/" + v.name;
    const tr = old.get(key) || newRow(v, key);
    old.delete(key);
    updateRow(tr, v);
    // Keep the server's order, moving a row only when it is out of place.
    const want = prev ? prev.nextSibling : rows.firstChild;
    if (want !== tr) rows.insertBefore(tr, want);
    prev = tr;
  }
  for (const gone of old.values()) gone.remove();
  $("list-empty").hidden = list.items.length > 0;
}

function openList() {
  stopStreams();
  show("list");
  document.title = "Sluice rollouts";
  listAbort = new AbortController();
  follow("/api/v1/rollouts/events", (name, data) => {
    if (name === "rollouts") renderList(JSON.parse(data));
  }, listAbort.signal);
}

// ---- one rollout ------------------------------------------------------------
function renderChart(samples) {
  const box = $("chart");
  box.replaceChildren();
  const W = 720, H = 240, L = 44, R = 60, T = 10, B = 28;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart-svg");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  const t0 = samples.length ? samples[0].t : Date.now();
  const t1 = Math.max(t0 + 10000, Date.now());
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const yw = (w) => T + (H - T - B) * (1 - w / 100);
  for (const w of [0, 50, 100]) {
    add("line", { x1: L, x2: W - R, y1: yw(w), y2: yw(w), class: "grid" });
    add("text", { x: L - 6, y: yw(w) + 4, class: "axis", "text-anchor": "end" }, w + "%");
  }
  add("text", { x: L, y: H - 8, class: "axis" }, time(t0));
  add("text", { x: W - R, y: H - 8, class: "axis", "text-anchor": "end" }, time(t1));
  const line = (pts, cls) => { if (pts.length) add("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: cls }); };
  // Weight is a step function: hold each value until the next sample.
  const wp = [];
  samples.forEach((s, i) => { if (i) wp.push([x(s.t), yw(samples[i - 1].weight)]); wp.push([x(s.t), yw(s.weight)]); });
  if (samples.length) wp.push([x(t1), yw(samples[samples.length - 1].weight)]); // held until now
  line(wp, "weight");
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.metrics)))];
  const legend = [el("span", { class: "key weight" }, "canary weight (left axis)")];
  names.forEach((n, i) => {
    const vals = samples.filter((s) => isFinite(s.metrics[n]));
    const max = Math.max(...vals.map((s) => s.metrics[n]), 1e-9);
    const ym = (v) => T + (H - T - B) * (1 - v / max);
    line(vals.map((s) => [x(s.t), ym(s.metrics[n])]), "metric m" + (i % 4));
    for (const s of vals) add("circle", { cx: x(s.t), cy: ym(s.metrics[n]), r: 4, class: "dot m" + (i % 4) });
    legend.push(el("span", { class: "key m" + (i % 4) }, n + " (0 to " + num(max) + ")"));
  });
  box.append(svg);
  $("chart-caption").replaceChildren(...legend,
    el("span", { class: "note" }, "Samples since this page opened, one per change the server reports."));
}

function renderDetail() {
  const c = current, v = c.view;
  $("detail-title").textContent = v.namespace + "/" + v.name;
  document.title = v.name + " \u2014 Sluice";
  $("detail-summary").textContent = `${v.phase} \u00b7 canary weight ${v.weight}% \u00b7 step ${stepText(v) || "none"} \u00b7 ` +
    `${v.strategy} of ${v.target} \u00b7 revision ${revision(v) || "none"}` + (v.message ? " \u00b7 " + v.message : "");
  const need = attention(v);
  $("detail-attention").hidden = !need;
  $("detail-attention").textContent = need;
  $("commands").hidden = !c.canCommand;
  const live = ["Progressing", "Paused", "Initializing"].includes(v.phase);
  const enable = { promote: live, "promote-full": live, pause: live && v.phase !== "Paused", resume: v.phase === "Paused" || v.paused, abort: live || v.phase === "Succeeded" };
  for (const b of $("commands").querySelectorAll("button")) b.disabled = !enable[b.dataset.action];
  const mrows = $("metric-rows");
  mrows.replaceChildren();
  for (const m of v.analysis || []) {
    const f = m.forecast && m.forecast.message ? m.forecast.message : "";
    mrows.append(el("tr", null, el("th", { scope: "row" }, m.name),
      el("td", { class: "verdict verdict-" + (m.lastVerdict || "none") }, m.lastVerdict || "not run yet"),
      el("td", null, m.lastValue === undefined ? "no value" : num(m.lastValue)),
      el("td", null, `${m.passed} / ${m.failed} / ${m.inconclusive} / ${m.errors}`),
      el("td", null, m.lastReason || ""), el("td", null, f)));
  }
  if (!(v.analysis || []).length) mrows.append(el("tr", null, el("td", { colspan: "6" }, "No analysis has run for this revision.")));
  // Gates (spec.gates): state, since when, deadline and the last answer.
  const gates = v.gates || [];
  $("gates-box").hidden = !gates.length;
  $("gate-rows").replaceChildren(...gates.map((g) => el("tr", null,
    el("th", { scope: "row" }, g.gate + (g.step === undefined ? "" : ` (step ${g.step + 1})`)),
    el("td", null, g.state),
    el("td", null, g.since ? time(g.since) : ""),
    el("td", null, g.deadlineAt ? time(g.deadlineAt) + (g.expired ? " (passed, waiting for a human)" : ` (then ${g.onDeadline})`) : ""),
    el("td", null, g.reason || ""))));
  const crows = $("condition-rows");
  crows.replaceChildren();
  for (const k of v.conditions || []) {
    crows.append(el("tr", null, el("th", { scope: "row" }, k.type), el("td", null, k.status),
      el("td", null, k.reason || ""), el("td", null, k.message || ""), el("td", null, time(k.lastTransitionTime))));
  }
  const hist = $("history");
  hist.replaceChildren(...c.history.slice().reverse().map((h) => el("li", null, el("time", null, time(h.t)), " " + h.text)));
  renderChart(c.samples);
}

// Transitions seen in one update, as history lines.
function transitions(old, v) {
  const out = [];
  if (!old) {
    if (v.startedAt) out.push({ t: Date.parse(v.startedAt), text: `rollout of ${v.canaryRevision || "the current revision"} started` });
    if (v.promotedAt) out.push({ t: Date.parse(v.promotedAt), text: `promoted ${v.stableRevision || ""}` });
    for (const k of v.conditions || []) out.push({ t: Date.parse(k.lastTransitionTime), text: `${k.type}=${k.status}${k.reason ? " (" + k.reason + ")" : ""}${k.message ? ": " + k.message : ""}` });
    out.push({ t: Date.now(), text: `now ${v.phase} at ${v.weight}%` });
    return out.sort((a, b) => a.t - b.t);
  }
  if (old.phase !== v.phase) out.push({ t: Date.now(), text: `phase ${old.phase} \u2192 ${v.phase}${v.message ? ": " + v.message : ""}` });
  if (old.weight !== v.weight) out.push({ t: Date.now(), text: `canary weight ${old.weight}% \u2192 ${v.weight}%` });
  if (old.step !== v.step) out.push({ t: Date.now(), text: `step ${stepText(old)} \u2192 ${stepText(v)}` });
  if (v.abort && !old.abort) out.push({ t: Date.now(), text: `aborted (${v.abort.source || "unknown"}): ${v.abort.reason || ""}` });
  if (v.acknowledgedCommand && (!old.acknowledgedCommand || old.acknowledgedCommand.id !== v.acknowledgedCommand.id))
    out.push({ t: Date.now(), text: `command ${v.acknowledgedCommand.action || ""} acted on` });
  return out;
}

async function openDetail(ns, name) {
  stopStreams();
  show("detail");
  const c = { ns, name, view: null, canCommand: false, samples: [], history: [], abort: new AbortController() };
  current = c;
  $("command-result").textContent = "";
  $("detail-title").textContent = ns + "/" + name;
  try {
    const q = new URLSearchParams({ namespace: ns, name });
    const a = await api("/api/v1/access?" + q);
    c.canCommand = a.canCommand;
  } catch (e) {
    if (e instanceof Unauthorized) return logout("Your token is no longer accepted.");
  }
  const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/rollouts/${encodeURIComponent(name)}/events`;
  follow(path, (ev, data) => {
    if (current !== c) return;
    if (ev === "error") { $("detail-summary").textContent = JSON.parse(data).message; return; }
    if (ev !== "rollout") return;
    const v = JSON.parse(data);
    c.history.push(...transitions(c.view, v));
    const metrics = {};
    for (const m of v.analysis || []) if (isFinite(m.lastValue)) metrics[m.name] = m.lastValue;
    c.samples.push({ t: Date.now(), weight: v.weight, metrics });
    if (c.samples.length > 2000) c.samples.shift();
    c.view = v;
    renderDetail();
  }, c.abort.signal);
}

// ---- commands ---------------------------------------------------------------
const ACTIONS = {
  promote: ["Promote one step", "Skip the current pause or analysis and go to the next step."],
  "promote-full": ["Promote fully", "Skip all remaining steps and make the canary the new stable version."],
  pause: ["Pause", "Hold the rollout at its current weight until someone resumes it."],
  resume: ["Resume", "Continue the rollout from where it paused."],
  abort: ["Abort", "Send all traffic back to stable now and scale the canary down."],
};

function ask(action) {
  const [title, text] = ACTIONS[action];
  const d = $("confirm");
  $("confirm-title").textContent = `${title} ${current.ns}/${current.name}?`;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = title;
  $("reason").value = "";
  d.returnValue = "";
  d.onclose = () => { if (d.returnValue === "ok") send(action, $("reason").value.trim()); };
  d.showModal();
  $("reason").focus();
}

async function send(action, reason) {
  const c = current;
  const verb = action === "promote-full" ? "promote?full=true" : action;
  const path = `/api/v1/namespaces/${encodeURIComponent(c.ns)}/rollouts/${encodeURIComponent(c.name)}/${verb}`;
  $("command-result").textContent = `Sending ${action}\u2026`;
  try {
    await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(reason ? { reason } : {}) });
    $("command-result").textContent = `${ACTIONS[action][0]} sent; the page updates when the controller acts on it.`;
  } catch (e) {
    if (e instanceof Unauthorized) return logout("Your token is no longer accepted.");
    $("command-result").textContent = `${ACTIONS[action][0]} refused: ${e.message}`;
  }
}

// ---- start ------------------------------------------------------------------
function route() {
  if (!token()) return logout();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 2) openDetail(parts[0], parts[1]); else openList();
  $("main").focus();
}

async function signIn(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
  try {
    const a = await api("/api/v1/access");
    $("who").textContent = "Signed in as " + a.user + (a.canCommand ? "" : " (read only)");
    $("login-error").textContent = "";
    route();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = e instanceof Unauthorized ? "That token is not accepted." : "Cannot reach Sluice: " + e.message;
    show("login");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token").value.trim();
    $("token").value = "";
    if (t) signIn(t);
  });
  $("logout").addEventListener("click", () => logout("Signed out."));
  for (const b of $("commands").querySelectorAll("button")) b.addEventListener("click", () => ask(b.dataset.action));
  window.addEventListener("hashchange", () => { if (token()) route(); });
  if (token()) signIn(token()); else logout();
});
