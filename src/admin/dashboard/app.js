// escale dashboard: reads the API, follows /api/events, renders plain DOM.
"use strict";

const VIEWS = ["overview", "routers", "services", "middlewares", "providers", "issues"];
const state = {
  view: "overview",
  search: "",
  status: "all",
  severity: "all",
  open: new Set(),
  data: null,
  live: {},
  changes: [],
  flash: new Set(),
  connected: false,
};

const $ = (sel) => document.querySelector(sel);
const esc = (v) =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

async function load() {
  const all = "per_page=100000";
  const [overview, routers, services, middlewares, providers, issues, version] = await Promise.all([
    getJSON("/api/overview"),
    getJSON(`/api/http/routers?${all}`),
    getJSON(`/api/http/services?${all}`),
    getJSON(`/api/http/middlewares?${all}`),
    getJSON("/api/providers"),
    getJSON(`/api/issues?${all}`),
    getJSON("/api/version"),
  ]);
  const live = {};
  for (const s of services) if (s.servers) live[s.name] = s.servers;
  state.live = live;
  state.data = { overview, routers, services, middlewares, providers, issues, version };
  render();
}

// ---- formatting -------------------------------------------------------

function statusPill(status) {
  const cls = status === "enabled" ? "ok" : status === "warning" ? "warn" : "err";
  return `<span class="pill ${cls}"><span class="dot"></span>${esc(status)}</span>`;
}

function healthPill(status) {
  return status === "UP"
    ? `<span class="pill ok"><span class="dot"></span>UP</span>`
    : `<span class="pill err"><span class="dot"></span>DOWN</span>`;
}

function ms(seconds) {
  if (seconds == null) return `<span class="muted">–</span>`;
  const v = seconds * 1000;
  return v < 10 ? `${v.toFixed(1)} ms` : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`;
}

function rate(r) {
  if (!r) return `<span class="muted">0/s</span>`;
  return `${r < 10 ? r.toFixed(1) : Math.round(r)}/s`;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function host(url) {
  try {
    return new URL(url.replace(/^h2c:/, "http:")).host;
  } catch {
    return url;
  }
}

function shortId(id) {
  return id ? esc(String(id).slice(0, 12)) : `<span class="muted">–</span>`;
}

function providerChip(p) {
  return p ? `<span class="prov">${esc(p)}</span>` : "";
}

function matches(...values) {
  const q = state.search.trim().toLowerCase();
  if (!q) return true;
  return values.some((v) => String(v ?? "").toLowerCase().includes(q));
}

function statusOk(status) {
  return state.status === "all" || state.status === status;
}

function statusFilter() {
  const opts = ["all", "enabled", "warning", "disabled"];
  return `<div class="filters" role="group" aria-label="Filter by status">${opts
    .map((o) => `<button type="button" data-status="${o}" aria-pressed="${state.status === o}">${o[0].toUpperCase() + o.slice(1)}</button>`)
    .join("")}</div>`;
}

// ---- views ------------------------------------------------------------

function serversSummary(serviceName) {
  const servers = state.live[serviceName];
  if (!servers) return `<span class="muted">–</span>`;
  const up = servers.filter((s) => s.status === "UP").length;
  const cls = up === servers.length && up > 0 ? "ok" : up === 0 ? "err" : "warn";
  return `<span class="pill ${cls}">${up}/${servers.length} up</span>`;
}

function serversTable(serviceName) {
  const servers = state.live[serviceName] || [];
  if (!servers.length) return `<div class="empty">No servers.</div>`;
  const maxRate = Math.max(1, ...servers.map((s) => s.rate || 0));
  const rows = servers
    .map(
      (s) => `<tr data-server="${esc(s.url)}">
        <td class="mono">${esc(s.address || host(s.url))}</td>
        <td>${healthPill(s.status)}</td>
        <td class="mono">${shortId(s.task)}${s.slot != null ? ` <span class="muted">#${esc(s.slot)}</span>` : ""}</td>
        <td class="mono">${shortId(s.node)}</td>
        <td class="num">${esc(s.inFlight)}</td>
        <td class="num">${rate(s.rate)}<span class="bar" style="width:${Math.round(((s.rate || 0) / maxRate) * 40)}px"></span></td>
        <td class="num">${ms(s.p50)}</td>
        <td class="num">${ms(s.p99)}</td>
        <td class="num">${esc(s.failures)}</td>
      </tr>`,
    )
    .join("");
  return `<table class="servers"><thead><tr>
      <th>Server</th><th>Health</th><th>Task</th><th>Node</th>
      <th class="num">In flight</th><th class="num">Rate</th><th class="num">p50</th><th class="num">p99</th><th class="num">Failures</th>
    </tr></thead><tbody>${rows}</tbody></table>`;
}

function errorBlock(errors, status) {
  if (!errors || !errors.length) return "";
  const cls = status === "warning" ? "errtext warn" : "errtext";
  return errors.map((e) => `<div class="${cls}" role="note">${esc(e)}</div>`).join("");
}

function viewOverview(d) {
  const o = d.overview;
  const card = (title, sec, href) => {
    const bad = sec.errors > 0;
    return `<a class="card${bad ? " bad" : ""}" href="#${href}">
      <h3>${title}</h3><div class="big">${sec.total}</div>
      <div class="parts">
        <span class="pill ok">${sec.total - sec.errors - sec.warnings} ok</span>
        ${sec.warnings ? `<span class="pill warn">${sec.warnings} warning${sec.warnings > 1 ? "s" : ""}</span>` : ""}
        ${sec.errors ? `<span class="pill err">${sec.errors} error${sec.errors > 1 ? "s" : ""}</span>` : ""}
      </div></a>`;
  };
  const srv = o.servers || { total: 0, up: 0, down: 0 };
  const issues = d.issues.filter((i) => matches(i.source, i.key, i.message, i.object));
  const problems = issues.length
    ? `<div class="table-wrap"><table><thead><tr><th>Severity</th><th>Where</th><th>Key</th><th>Reason</th></tr></thead><tbody>${issues
        .slice(0, 8)
        .map(issueRow)
        .join("")}</tbody></table></div>${issues.length > 8 ? `<p><a href="#issues">All ${issues.length} issues →</a></p>` : ""}`
    : `<div class="card"><span class="pill ok"><span class="dot"></span>No configuration problems</span></div>`;
  const feed = state.changes.length
    ? `<ul class="feed">${state.changes
        .slice(0, 12)
        .map(
          (c) => `<li><span class="when">${esc(c.time)}</span><span class="pill ${c.action === "removed" ? "err" : c.action === "added" ? "ok" : "mute"}">${esc(c.action)}</span><span>${esc(c.kind)} <span class="mono">${esc(c.name)}</span></span></li>`,
        )
        .join("")}</ul>`
    : `<div class="empty">Changes appear here as they happen.</div>`;
  return `<div class="view-head"><div class="grow"><h1>Overview</h1>
      <p class="sub">Generation ${esc(o.generation)} · providers: ${(o.providers || []).map(esc).join(", ") || "none"}${o.draining ? ' · <span class="pill warn">draining</span>' : ""}</p></div></div>
    <div class="cards">
      ${card("Routers", o.http.routers, "routers")}
      ${card("Services", o.http.services, "services")}
      ${card("Middlewares", o.http.middlewares, "middlewares")}
      <a class="card${srv.down ? " bad" : ""}" href="#services"><h3>Servers</h3><div class="big">${srv.total}</div>
        <div class="parts"><span class="pill ok">${srv.up} up</span>${srv.down ? `<span class="pill err">${srv.down} down</span>` : ""}</div></a>
      <a class="card${o.issues.errors ? " bad" : ""}" href="#issues"><h3>Config issues</h3><div class="big">${o.issues.total}</div>
        <div class="parts">${o.issues.errors ? `<span class="pill err">${plural(o.issues.errors, "error")}</span>` : `<span class="pill ok">no errors</span>`}${o.issues.warnings ? `<span class="pill warn">${plural(o.issues.warnings, "warning")}</span>` : ""}</div></a>
    </div>
    <div class="two">
      <section><h2>Problems</h2>${problems}</section>
      <section><h2>Recent changes</h2><div class="table-wrap">${feed}</div></section>
    </div>`;
}

function viewRouters(d) {
  const list = d.routers.filter(
    (r) => statusOk(r.status) && matches(r.name, r.rule, r.service, (r.entryPoints || []).join(" "), (r.error || []).join(" ")),
  );
  const rows = list
    .map((r) => {
      const id = `router:${r.name}`;
      const open = state.open.has(id);
      const cls = ["row", r.status === "disabled" ? "has-error" : r.status === "warning" ? "has-warning" : "", open ? "open" : "", state.flash.has(id) ? "flash" : ""].join(" ");
      const internal = r.service.endsWith("@internal");
      return `<tr class="${cls}" tabindex="0" data-toggle="${esc(id)}" data-name="${esc(r.name)}" aria-expanded="${open}">
          <td class="nowrap"><span class="caret">▸</span> ${statusPill(r.status)}</td>
          <td><span class="name">${esc(r.name)}</span>${providerChip(r.provider)}${errorBlock(r.error, r.status)}</td>
          <td class="rule">${esc(r.rule)}</td>
          <td>${(r.entryPoints || r.using || []).map((e) => `<span class="chip">${esc(e)}</span>`).join("")}</td>
          <td class="num" title="configured: ${esc(r.priorityStr)}">${esc(shortPriority(r.effectivePriority ?? r.priority))}</td>
          <td class="mono">${esc(r.service)}</td>
          <td>${internal ? `<span class="pill mute">internal</span>` : serversSummary(r.service)}</td>
        </tr>${
          open
            ? `<tr class="detail"><td colspan="7">${
                (r.middlewares || []).length
                  ? `<p>Middlewares: ${r.middlewares.map((m) => `<span class="chip">${esc(m)}</span>`).join("")}</p>`
                  : ""
              }${internal ? `<p class="muted">Answered by escale itself.</p>` : serversTable(r.service)}</td></tr>`
            : ""
        }`;
    })
    .join("");
  return `<div class="view-head"><div class="grow"><h1>Routers</h1><p class="sub">${list.length} of ${d.routers.length} routers · an error disables only its own router</p></div>${statusFilter()}</div>
    <div class="table-wrap"><table><thead><tr><th>Status</th><th>Name</th><th>Rule</th><th>Entrypoints</th><th class="num">Priority</th><th>Service</th><th>Servers</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="empty">No router matches.</td></tr>`}</tbody></table></div>`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function shortPriority(p) {
  if (p == null) return "";
  return p > 1e15 ? "max" : p;
}

/** The services a weighted, highestRandomWeight, failover or mirroring service sends to. */
function childrenOf(s) {
  const chip = (name, extra) => `<span class="chip">${esc(name)}${extra ? ` · ${esc(extra)}` : ""}</span>`;
  let parts = null;
  const over = (list) => [["over", (list || []).map((c) => chip(c.name, `weight ${c.weight ?? 1}`))]];
  if (s.weighted) {
    parts = over(s.weighted.services);
  } else if (s.highestRandomWeight) {
    parts = over(s.highestRandomWeight.services);
  } else if (s.failover) {
    parts = [["main", [chip(s.failover.service)]], ["fallback", [chip(s.failover.fallback)]]];
  } else if (s.mirroring) {
    parts = [["main", [chip(s.mirroring.service)]], ["mirrors", (s.mirroring.mirrors || []).map((m) => chip(m.name, `${m.percent}%`))]];
  }
  if (!parts) return "";
  return `<div class="children">${parts.map(([k, v]) => `<span class="muted">${k}</span> ${v.join(" ")}`).join(" ")}</div>`;
}

function viewServices(d) {
  const list = d.services.filter((s) => {
    const servers = state.live[s.name] || [];
    return (
      statusOk(s.status) &&
      matches(s.name, (s.usedBy || []).join(" "), (s.error || []).join(" "), ...servers.map((x) => `${x.url} ${x.task || ""} ${x.node || ""}`))
    );
  });
  const internals = list.filter((s) => s.provider === "internal");
  const cards = list
    .filter((s) => s.provider !== "internal")
    .map((s) => {
      const internal = false;
      const bad = s.status !== "enabled";
      return `<section class="card svc${bad ? " has-error" : ""}${state.flash.has(`service:${s.name}`) ? " flash" : ""}" style="padding:0" data-service="${esc(s.name)}">
        <div class="svc-head">${statusPill(s.status)}<span class="name">${esc(s.name)}</span>${providerChip(s.provider)}
          ${s.type ? `<span class="chip">${esc(s.type)}</span>` : ""}
          <span class="spacer"></span>
          ${(s.usedBy || []).length ? `<span class="muted">used by</span> ${(s.usedBy || []).map((u) => `<span class="chip">${esc(u)}</span>`).join("")}` : `<span class="muted">not used by any router</span>`}
        </div>
        ${errorBlock(s.error, s.status)}
        ${internal ? `<div class="empty">Internal service, answered by escale.</div>` : childrenOf(s) || serversTable(s.name)}
      </section>`;
    })
    .join("");
  return `<div class="view-head"><div class="grow"><h1>Services</h1><p class="sub">${list.length} of ${d.services.length} services · live figures over the last 10 s</p></div>${statusFilter()}</div>
    ${cards || (internals.length ? "" : `<div class="card empty">No service matches.</div>`)}
    ${
      internals.length
        ? `<section class="card" style="padding:0"><div class="internal-list"><span class="muted">Internal services, answered by escale:</span>${internals
            .map((s) => `<span class="chip" title="used by ${esc((s.usedBy || []).join(", ") || "no router")}">${esc(s.name)}</span>`)
            .join("")}</div></section>`
        : ""
    }`;
}

function viewMiddlewares(d) {
  const list = d.middlewares.filter((m) => statusOk(m.status) && matches(m.name, m.type, (m.error || []).join(" ")));
  const rows = list
    .map(
      (m) => `<tr class="${m.status === "disabled" ? "has-error" : m.status === "warning" ? "has-warning" : ""}">
        <td>${statusPill(m.status)}</td>
        <td><span class="name">${esc(m.name)}</span>${providerChip(m.provider)}${errorBlock(m.error, m.status)}</td>
        <td><span class="chip">${esc(m.type)}</span></td>
        <td>${(m.usedBy || []).map((u) => `<span class="chip">${esc(u)}</span>`).join("") || `<span class="muted">unused</span>`}</td>
      </tr>`,
    )
    .join("");
  return `<div class="view-head"><div class="grow"><h1>Middlewares</h1><p class="sub">${list.length} of ${d.middlewares.length} middlewares</p></div>${statusFilter()}</div>
    <div class="table-wrap"><table><thead><tr><th>Status</th><th>Name</th><th>Type</th><th>Used by</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="4" class="empty">No middleware matches.</td></tr>`}</tbody></table></div>`;
}

function viewProviders(d) {
  const cards = d.providers
    .filter((p) => matches(p.name, p.lastError))
    .map(
      (p) => `<section class="card prov-card${p.errors || p.lastError ? " bad" : ""}">
        <div style="display:flex;align-items:center;gap:10px">
          <span class="name" style="font-size:16px">${esc(p.name)}</span>
          ${p.connected ? `<span class="pill ok"><span class="dot"></span>synced</span>` : `<span class="pill err"><span class="dot"></span>disconnected</span>`}
          <span class="muted" style="margin-left:auto">last sync ${esc(ago(p.lastSync))}</span>
        </div>
        ${p.lastError ? `<div class="errtext">${esc(p.lastError)}</div>` : ""}
        <div class="row2">
          <div><div class="k">Routers</div><div class="v">${p.routers}</div></div>
          <div><div class="k">Services</div><div class="v">${p.services}</div></div>
          <div><div class="k">Servers</div><div class="v">${p.servers}</div></div>
          <div><div class="k">Middlewares</div><div class="v">${p.middlewares}</div></div>
          <div><div class="k">Events</div><div class="v">${p.events}</div></div>
          <div><div class="k">Syncs</div><div class="v">${p.syncs}</div></div>
          <div><div class="k">Reconnects</div><div class="v">${p.reconnects}</div></div>
          <div><div class="k">Issues</div><div class="v">${p.errors ? `<span class="pill err">${plural(p.errors, "error")}</span>` : "0"}${p.warnings ? ` <span class="pill warn">${p.warnings}</span>` : ""}</div></div>
        </div>
      </section>`,
    )
    .join("");
  return `<div class="view-head"><div class="grow"><h1>Providers</h1><p class="sub">Where the configuration comes from</p></div></div>
    <div class="cards" style="grid-template-columns:repeat(auto-fill,minmax(340px,1fr))">${cards || `<div class="card empty">No provider matches.</div>`}</div>`;
}

function issueRow(i) {
  return `<tr class="${i.severity === "error" ? "has-error" : "has-warning"}">
    <td><span class="pill ${i.severity === "error" ? "err" : "warn"}">${esc(i.severity)}</span></td>
    <td>${esc(i.source)}${i.object ? `<div class="muted mono">${esc(i.object)}</div>` : ""}</td>
    <td class="mono">${esc(i.key || "")}</td>
    <td>${esc(i.message)}</td>
  </tr>`;
}

function viewIssues(d) {
  const list = d.issues.filter(
    (i) => (state.severity === "all" || i.severity === state.severity) && matches(i.source, i.key, i.message, i.object, i.provider),
  );
  const sev = ["all", "error", "warning"]
    .map((o) => `<button type="button" data-severity="${o}" aria-pressed="${state.severity === o}">${o === "all" ? "All" : o[0].toUpperCase() + o.slice(1) + "s"}</button>`)
    .join("");
  return `<div class="view-head"><div class="grow"><h1>Issues</h1><p class="sub">Every label and configuration problem, with the key at fault. Everything else keeps serving.</p></div>
      <div class="filters" role="group" aria-label="Filter by severity">${sev}</div></div>
    <div class="table-wrap"><table><thead><tr><th>Severity</th><th>Where</th><th>Key</th><th>Reason</th></tr></thead>
    <tbody>${list.map(issueRow).join("") || `<tr><td colspan="4" class="empty">No issue${state.search ? " matches" : ""}. </td></tr>`}</tbody></table></div>`;
}

// ---- rendering ----------------------------------------------------------

function setCount(id, n, bad) {
  const el = $(id);
  el.textContent = n ? String(n) : "";
  el.classList.toggle("bad", !!bad);
}

function render() {
  const d = state.data;
  if (!d) return;
  const o = d.overview;
  setCount("#count-routers", d.routers.length, o.http.routers.errors);
  setCount("#count-services", d.services.length, o.http.services.errors || (o.servers && o.servers.down));
  setCount("#count-middlewares", d.middlewares.length, o.http.middlewares.errors);
  setCount("#count-providers", d.providers.length, d.providers.some((p) => !p.connected || p.lastError));
  setCount("#count-issues", d.issues.length, o.issues.errors);
  $("#meta").textContent = `v${d.version.Version} · gen ${o.generation}`;

  const banner = $("#banner");
  const errors = o.issues.errors + o.http.routers.errors;
  if (errors && state.view !== "issues") {
    banner.hidden = false;
    banner.innerHTML = `<span class="pill err">${o.issues.errors} configuration error${o.issues.errors === 1 ? "" : "s"}</span>
      <span>${o.http.routers.errors} router${o.http.routers.errors === 1 ? " is" : "s are"} disabled; everything else keeps serving.</span>
      <a href="#issues">See the issues</a>`;
  } else {
    banner.hidden = true;
  }

  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === state.view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const views = { overview: viewOverview, routers: viewRouters, services: viewServices, middlewares: viewMiddlewares, providers: viewProviders, issues: viewIssues };
  const active = document.activeElement;
  const focusKey = active && active.dataset ? active.dataset.toggle : null;
  $("#view").innerHTML = views[state.view](d);
  if (focusKey) {
    const again = document.querySelector(`[data-toggle="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  }
}

/// Live figures arrive every few seconds: update them without a refetch.
function applyStats(stats) {
  state.live = stats.servers || {};
  if (state.data && (state.view === "services" || state.view === "routers")) render();
}

function applyConfig(ev) {
  const time = new Date().toLocaleTimeString();
  for (const c of ev.changes || []) {
    state.changes.unshift({ ...c, time });
    state.flash.add(`${c.kind}:${c.name}`);
  }
  state.changes = state.changes.slice(0, 50);
  load().catch(showError);
  setTimeout(() => state.flash.clear(), 2600);
}

function setLive(on, text) {
  const el = $("#live");
  el.classList.toggle("on", on);
  el.classList.toggle("off", !on);
  el.querySelector(".live-text").textContent = text;
  state.connected = on;
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => {
    setLive(true, "Live");
    load().catch(showError);
  });
  es.addEventListener("config", (e) => applyConfig(JSON.parse(e.data)));
  es.addEventListener("stats", (e) => applyStats(JSON.parse(e.data)));
  es.onerror = () => setLive(false, "Reconnecting…");
}

function showError(e) {
  const banner = $("#banner");
  banner.hidden = false;
  banner.textContent = `Cannot reach the API: ${e.message}`;
}

function route() {
  const v = location.hash.replace(/^#/, "");
  state.view = VIEWS.includes(v) ? v : "overview";
  state.status = "all";
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  const search = $("#search");
  search.addEventListener("input", () => {
    state.search = search.value;
    render();
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      search.value = "";
      state.search = "";
      render();
      search.blur();
    }
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target.matches("input, textarea");
    if (e.key === "/" && !typing) {
      e.preventDefault();
      search.focus();
      search.select();
    } else if (!typing && !e.ctrlKey && !e.metaKey && !e.altKey && /^[1-6]$/.test(e.key)) {
      location.hash = VIEWS[Number(e.key) - 1];
    } else if (!typing && (e.key === "Enter" || e.key === " ") && e.target.dataset && e.target.dataset.toggle) {
      e.preventDefault();
      toggle(e.target.dataset.toggle);
    } else if (!typing && (e.key === "ArrowDown" || e.key === "ArrowUp") && e.target.classList.contains("row")) {
      e.preventDefault();
      const rows = [...document.querySelectorAll("tr.row")];
      const i = rows.indexOf(e.target) + (e.key === "ArrowDown" ? 1 : -1);
      if (rows[i]) rows[i].focus();
    }
  });
  $("#view").addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-status], button[data-severity]");
    if (btn) {
      if (btn.dataset.status) state.status = btn.dataset.status;
      if (btn.dataset.severity) state.severity = btn.dataset.severity;
      render();
      return;
    }
    const row = e.target.closest("[data-toggle]");
    if (row) toggle(row.dataset.toggle);
  });
  window.addEventListener("hashchange", route);
  route();
  load().catch(showError);
  connect();
  // Relative times ("12s ago") stay current.
  setInterval(() => state.view === "providers" && render(), 5000);
});

function toggle(id) {
  if (state.open.has(id)) state.open.delete(id);
  else state.open.add(id);
  render();
  const row = document.querySelector(`[data-toggle="${CSS.escape(id)}"]`);
  if (row) row.focus();
}
