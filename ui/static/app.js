// Gatehouse UI: modal dialogs and live updates. Everything works without this
// file; it only makes dialogs modal and keeps the dashboard current.
(() => {
  "use strict";

  // Dialogs. Triggers are links to ?dialog=ID so they also work without
  // JavaScript (the server then renders the dialog open).
  const openDialog = (id) => {
    const d = document.getElementById(id);
    if (!(d instanceof HTMLDialogElement)) return false;
    if (d.open) d.close();
    d.showModal();
    const first = d.querySelector("input:not([type=hidden]), select, button");
    if (first) first.focus();
    return true;
  };
  // Navigation menus are <details>: a click elsewhere or Escape closes an
  // open one, and opening one closes the others.
  const closeMenus = (except) => {
    for (const m of document.querySelectorAll("details[data-nav-menu][open]")) {
      if (m !== except) m.open = false;
    }
  };
  document.addEventListener("click", (ev) => closeMenus(ev.target.closest("details[data-nav-menu]")));
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    const open = document.querySelector("details[data-nav-menu][open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });

  document.addEventListener("click", (ev) => {
    const opener = ev.target.closest("[data-dialog]");
    if (opener && openDialog(opener.dataset.dialog)) {
      ev.preventDefault();
      return;
    }
    const closer = ev.target.closest("[data-dialog-close]");
    if (closer) {
      const d = closer.closest("dialog");
      if (d) {
        ev.preventDefault();
        d.close();
      }
      return;
    }
    const copy = ev.target.closest("[data-copy]");
    if (copy) {
      const field = document.getElementById(copy.dataset.copy);
      if (!field) return;
      field.select();
      const done = () => { copy.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => {});
      else if (document.execCommand("copy")) done();
    }
  });
  // A dialog the server rendered open (after a validation error) becomes modal.
  document.addEventListener("DOMContentLoaded", () => {
    for (const d of document.querySelectorAll("dialog[open]")) openDialog(d.id);
    // A log reads like tail: the newest lines, at the bottom, in view.
    for (const pre of document.querySelectorAll("[data-log-lines]")) pre.scrollTop = pre.scrollHeight;
    followLog();
  });

  // Follow a log: with the box ticked, the page re-reads the log every few
  // seconds through the API and keeps the newest lines in view unless the
  // reader scrolled up. Lines are set as text, never as markup.
  const fmtBytes = (n) => {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
  };
  const followLog = () => {
    const box = document.querySelector("[data-follow-log]");
    const pre = document.querySelector("[data-log-lines]");
    const empty = document.querySelector("[data-log-empty]");
    if (!box || !pre) return;
    box.hidden = false;
    const tick = box.querySelector("input");
    let timer = 0;
    const poll = async () => {
      try {
        const res = await fetch(pre.dataset.logSrc, { credentials: "same-origin" });
        if (!res.ok) throw new Error(String(res.status));
        const log = await res.json();
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = log.lines.length ? log.lines.join("\n") + "\n" : "";
        pre.hidden = log.lines.length === 0;
        if (empty) empty.hidden = log.lines.length !== 0;
        if (atEnd) pre.scrollTop = pre.scrollHeight;
        const size = document.querySelector("[data-log-size]");
        if (size) size.textContent = fmtBytes(log.size);
        const mod = document.querySelector("[data-log-modified]");
        if (mod) { mod.textContent = new Date(log.modified).toLocaleTimeString(); mod.dateTime = log.modified; }
      } catch (err) {
        tick.checked = false; // the agent went away or the session ended: stop
      }
      if (tick.checked) timer = setTimeout(poll, 3000);
    };
    tick.addEventListener("change", () => {
      clearTimeout(timer);
      if (tick.checked) poll();
    });
  };

  // Live updates: elements with data-live="TOPIC" subscribe to that topic.
  // An event's data.id picks the tile (data-server-id); every key of the
  // event's data updates the tile's element with the matching data-field.
  const handlers = {};
  const gatehouse = {
    on(name, fn) { (handlers[name] = handlers[name] || []).push(fn); },
  };
  window.gatehouse = gatehouse;

  const applyServer = (data) => {
    const tile = document.querySelector(`[data-server-id="${CSS.escape(String(data.id))}"]`);
    if (!tile) return;
    for (const [key, value] of Object.entries(data)) {
      if (key === "status") tile.dataset.status = value;
      const el = tile.querySelector(`[data-field="${CSS.escape(key)}"]`);
      if (!el) continue;
      if (el instanceof HTMLMeterElement) {
        el.value = Number(value) || 0;
      } else if (el instanceof HTMLTimeElement) {
        el.dateTime = value;
        el.textContent = "just now";
      } else {
        el.textContent = value;
        if (key === "status") el.className = `status status-${value}`;
        // A fact shown only once it has a value (nginx's figures).
        const row = el.parentElement;
        if (row && row.hidden && value) row.hidden = false;
      }
    }
  };
  gatehouse.on("server.status", applyServer);
  gatehouse.on("server.update", applyServer);
  gatehouse.on("server.tiles", (list) => { for (const d of list || []) applyServer(d); });

  document.addEventListener("DOMContentLoaded", () => {
    const topics = [...document.querySelectorAll("[data-live]")].map((el) => el.dataset.live);
    if (!topics.length || !window.EventSource) return;
    const q = [...new Set(topics)].map((t) => "topic=" + encodeURIComponent(t)).join("&");
    const es = new EventSource("/events?" + q);
    const dispatch = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      for (const fn of handlers[msg.name] || []) fn(msg.data, msg);
    };
    for (const name of Object.keys(handlers)) es.addEventListener(name, dispatch);
    es.onmessage = dispatch;
  });
})();

// Server charts: fetch the series for the chosen range, draw each chart as an
// SVG line, and extend the lines with live samples from the server's topic.
(() => {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 160;
  const fmtBytes = (v) => {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + u[i];
  };
  const fmt = (v, unit) => {
    if (v == null || Number.isNaN(v)) return "—";
    if (unit === "B/s") return fmtBytes(v) + "/s";
    if (unit === "%") return v.toFixed(1) + "%";
    if (unit === "/s") return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + "/s";
    if (unit === "count") return Math.round(v).toString();
    return v.toFixed(2);
  };
  const el = (name, attrs) => {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };

  // splitRuns cuts points where the node sent nothing for a while (it or the
  // controller was down), so the line stops instead of drawing a slope across
  // the gap: a gap is five typical steps and at least 1% of the chart's span.
  const splitRuns = (pts, span) => {
    const steps = [];
    for (let i = 1; i < pts.length; i++) steps.push(pts[i].t - pts[i - 1].t);
    steps.sort((a, b) => a - b);
    const gap = steps.length ? Math.max(5 * steps[Math.floor(steps.length / 2)], span / 100) : Infinity;
    const runs = [[]];
    pts.forEach((p, i) => {
      if (i > 0 && p.t - pts[i - 1].t > gap) runs.push([]);
      runs[runs.length - 1].push(p);
    });
    return runs;
  };
  window.gatehouseCharts = { splitRuns };

  // spanWords names a chart's time span for its axis: "1 h", "24 h", "7 d".
  const spanWords = (ms) => {
    const h = Math.round(ms / 3600000);
    if (h < 1) return Math.max(1, Math.round(ms / 60000)) + " min";
    if (h <= 48) return h + " h";
    return Math.round(h / 24) + " d";
  };
  const clock = (ms, span) => {
    const d = new Date(ms);
    const hm = d.toISOString().slice(11, 16);
    return span > 48 * 3600000 ? d.toISOString().slice(5, 10) + " " + hm : hm;
  };
  // nearest returns the point closest in time to t (points are in order).
  const nearest = (pts, t) => {
    let lo = 0, hi = pts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pts[mid].t < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && t - pts[lo - 1].t < pts[lo].t - t) lo--;
    return pts[lo];
  };
  window.gatehouseCharts.nearest = nearest;

  const draw = (fig, series) => {
    const svg = fig.querySelector("svg");
    const keys = fig.dataset.chart.split(",");
    const unit = fig.dataset.unit;
    const pts = series.points || [];
    fig.series = series;
    svg.replaceChildren();
    for (const f of [0.25, 0.5, 0.75]) svg.append(el("line", { class: "grid", x1: 0, x2: W, y1: H * f, y2: H * f }));
    const caption = fig.querySelector("figcaption");
    let cap = caption.querySelector("b");
    if (!cap) { cap = document.createElement("b"); caption.append(cap); }
    let axis = fig.querySelector(".chart-axis");
    if (!axis) {
      axis = document.createElement("div");
      axis.className = "chart-axis";
      axis.append(document.createElement("span"), document.createElement("span"), document.createElement("span"));
      fig.append(axis);
    }
    const span = Math.max(series.to - series.from, 1);
    axis.children[0].textContent = spanWords(span) + " ago";
    axis.children[2].textContent = "now";
    if (!pts.length) {
      const t = el("text", { class: "empty-chart", x: W / 2, y: H / 2, "text-anchor": "middle" });
      t.textContent = "no data for this range yet";
      svg.append(t);
      cap.textContent = "—";
      axis.children[1].textContent = "";
      fig.latest = "—";
      return;
    }
    let max = Number(fig.dataset.max) || 0;
    if (!max) for (const p of pts) for (const k of keys) max = Math.max(max, p[k] || 0);
    max = max || 1;
    const from = series.from;
    const runs = splitRuns(pts, span);
    const x = (p) => (((p.t - from) / span) * W).toFixed(1);
    keys.forEach((k, i) => {
      for (const run of runs) {
        const d = run.map((p) => `${x(p)},${(H - ((p[k] || 0) / max) * H * 0.95).toFixed(1)}`).join(" ");
        if (i === 0 && keys.length === 1) {
          svg.append(el("polygon", { class: "area", points: `${x(run[0])},${H} ${d} ${x(run[run.length - 1])},${H}` }));
        }
        svg.append(el("polyline", { class: `line s${i}`, points: d }));
      }
    });
    svg.append(el("line", { class: "cursor", x1: -10, x2: -10, y1: 0, y2: H }));
    const peaks = keys.map((k) => Math.max(...pts.map((p) => p[k] || 0)));
    axis.children[1].textContent = "peak " + peaks.map((v) => fmt(v, unit)).join(" / ");
    const last = pts[pts.length - 1];
    fig.latest = keys.map((k) => fmt(last[k], unit)).join(" / ");
    cap.textContent = fig.latest;
  };

  // Pointing at a chart reads the value at that moment into its caption.
  document.addEventListener("pointermove", (ev) => {
    const svg = ev.target.closest && ev.target.closest("[data-chart] svg");
    for (const fig of document.querySelectorAll("[data-chart].reading")) {
      if (!svg || fig !== svg.closest("[data-chart]")) {
        fig.classList.remove("reading");
        fig.querySelector("figcaption b").textContent = fig.latest || "—";
      }
    }
    if (!svg) return;
    const fig = svg.closest("[data-chart]");
    const series = fig.series;
    if (!series || !series.points || !series.points.length) return;
    const r = svg.getBoundingClientRect();
    const span = Math.max(series.to - series.from, 1);
    const t = series.from + ((ev.clientX - r.left) / r.width) * span;
    const p = nearest(series.points, t);
    const keys = fig.dataset.chart.split(",");
    fig.classList.add("reading");
    fig.querySelector("figcaption b").textContent = clock(p.t, span) + " · " + keys.map((k) => fmt(p[k], fig.dataset.unit)).join(" / ");
    const cx = (((p.t - series.from) / span) * W).toFixed(1);
    const cursor = svg.querySelector(".cursor");
    if (cursor) { cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); }
  });

  const load = async (box, range) => {
    const res = await fetch(`/api/v1/servers/${encodeURIComponent(box.dataset.server)}/metrics?range=${encodeURIComponent(range)}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const series = await res.json();
    box.series = series;
    box.dataset.range = range;
    for (const fig of box.querySelectorAll("[data-chart]")) draw(fig, series);
    box.dataset.drawn = "true";
  };

  const pct = (u, t) => (t > 0 ? (u / t) * 100 : 0);
  const pointOf = (s) => ({
    t: s.ts, cpu: s.cpu, cpu_max: s.cpu, mem: pct(s.mem_used, s.mem_total), swap: pct(s.swap_used, s.swap_total),
    disk: pct(s.disk_used, s.disk_total), load1: s.load1, rx: s.net_rx, tx: s.net_tx,
    rps: s.nginx_rps, conns: s.nginx_conns,
  });

  // Live samples extend the raw (1 h) view. The handler is registered now, not
  // on DOMContentLoaded, so the event stream set up then listens for it.
  window.gatehouse.on("metrics", (s) => {
    const box = document.querySelector("[data-charts]");
    if (!box || !box.series || String(s.server_id) !== box.dataset.server || box.dataset.range !== "1h") return;
    const p = pointOf(s);
    const pts = box.series.points;
    if (pts.length && pts[pts.length - 1].t >= p.t) return;
    pts.push(p);
    const span = box.series.to - box.series.from;
    box.series.to = p.t;
    box.series.from = p.t - span;
    while (pts.length && pts[0].t < box.series.from) pts.shift();
    for (const fig of box.querySelectorAll("[data-chart]")) draw(fig, box.series);
    box.dataset.live = "true";
    box.dataset.points = String(pts.length);
  });

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.querySelector("[data-charts]");
    if (!box) return;
    load(box, box.dataset.range || "1h");
    for (const a of document.querySelectorAll("[data-range]:not([data-charts])")) {
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        for (const o of document.querySelectorAll("[data-range]:not([data-charts])")) o.removeAttribute("aria-current");
        a.setAttribute("aria-current", "true");
        history.replaceState(null, "", a.href);
        load(box, a.dataset.range);
      });
    }
  });

  // Processes, fetched through the agent from the node's Glances.
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-load-processes]");
    if (!btn) return;
    const sec = btn.closest("[data-processes]");
    const note = sec.querySelector("[data-processes-note]");
    const table = sec.querySelector("[data-processes-table]");
    btn.disabled = true;
    note.textContent = "Loading…";
    try {
      const res = await fetch(`/api/v1/servers/${encodeURIComponent(sec.dataset.processes)}/glances/processlist`, { credentials: "same-origin" });
      const body = await res.json();
      if (!res.ok) { note.textContent = (body.error && body.error.message) || "The processes could not be loaded."; return; }
      const list = (Array.isArray(body) ? body : []).sort((a, b) => (b.cpu_percent || 0) - (a.cpu_percent || 0)).slice(0, 25);
      const tbody = table.querySelector("tbody");
      tbody.replaceChildren();
      for (const p of list) {
        const tr = document.createElement("tr");
        const cmd = Array.isArray(p.cmdline) ? p.cmdline.join(" ") : "";
        for (const v of [p.pid, p.name, p.username, (p.cpu_percent || 0).toFixed(1), (p.memory_percent || 0).toFixed(1), cmd]) {
          const td = document.createElement("td");
          td.textContent = v == null ? "" : String(v);
          tr.append(td);
        }
        tbody.append(tr);
      }
      table.hidden = false;
      note.textContent = `Top ${list.length} by CPU, as Glances saw them just now.`;
    } catch {
      note.textContent = "The processes could not be loaded.";
    } finally {
      btn.disabled = false;
    }
  });
})();

// === Proxy configuration: live apply outcomes on a server's revisions page ===
// The controller publishes {server_id, number, status, outcome} as "revision" events on
// the topic server.<id>; the row of that revision (or a new row) and the desired and
// applied figures follow without a reload.
(() => {
  "use strict";
  // A stored outcome code such as reload_failed, in words.
  const words = (code) => (code || "").replace(/_/g, " ");
  const statusCell = (status) => {
    const s = document.createElement("span");
    s.className = `status rev-${status}`;
    s.dataset.field = "status";
    s.textContent = status;
    return s;
  };
  window.gatehouse.on("revision", (data) => {
    const box = document.querySelector(`[data-revisions-of="${CSS.escape(String(data.server_id))}"]`);
    if (!box || typeof data.number !== "number") return;
    const n = String(data.number);
    let table = document.querySelector("table[data-revisions]");
    let row = table && table.querySelector(`tr[data-revision="${CSS.escape(n)}"]`);
    if (!row && table) {
      row = document.createElement("tr");
      row.dataset.revision = n;
      row.classList.add("is-new");
      const link = document.createElement("a");
      link.href = `/servers/${encodeURIComponent(String(data.server_id))}/revisions/${encodeURIComponent(n)}`;
      const strong = document.createElement("strong");
      strong.textContent = "r" + n;
      link.append(strong);
      const cells = [link, "", statusCell(data.status || "pending"), words(data.outcome) || "—", "just now", "—", "—"];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        if (c instanceof Node) td.append(c); else td.textContent = c;
        if (i === 3) td.dataset.field = "outcome";
        row.append(td);
      });
      table.tBodies[0].prepend(row);
      table.hidden = false;
      const empty = document.querySelector("[data-revisions-empty]");
      if (empty) empty.remove();
    }
    if (row) {
      const st = row.querySelector('[data-field="status"]');
      if (st) st.replaceWith(statusCell(data.status));
      const oc = row.querySelector('[data-field="outcome"]');
      if (oc) oc.textContent = words(data.outcome) || "—";
    }
    const desired = box.querySelector("[data-desired]");
    const applied = box.querySelector("[data-applied]");
    if (desired && data.status === "pending" && !data.outcome) desired.textContent = "r" + n;
    if (applied && data.status === "applied") applied.textContent = "r" + n;
    const sync = box.querySelector("[data-sync]");
    if (sync && desired && applied) {
      const inSync = desired.textContent === applied.textContent;
      const s = document.createElement("span");
      s.className = inSync ? "status status-online" : "status status-pending";
      s.textContent = inSync ? "in sync" : "behind";
      sync.replaceChildren(s);
    }
    box.dataset.lastRevision = n;
    box.dataset.lastStatus = data.status || "";
  });
})();

// Provisioning task page: each finished step arrives on the topic task.<id>
// and is appended to the log; when the task ends the page reloads to show the
// stored log and outcome. A step that ended before the stream opened is not
// lost: without news for 10 s the page reloads from the stored log.
(() => {
  const gh = window.gatehouse;
  if (!gh) return;
  const box = () => document.querySelector("[data-task]");
  let last = Date.now();
  document.addEventListener("DOMContentLoaded", () => {
    const b = box();
    if (!b || !b.dataset.live) return;
    setInterval(() => { if (Date.now() - last > 10000) location.reload(); }, 2000);
  });
  gh.on("task.step", (data) => {
    const b = box();
    if (!b || String(data.task_id) !== b.dataset.task) return;
    last = Date.now();
    const log = b.querySelector("[data-task-log]");
    if (log && !log.textContent.includes(data.text)) log.textContent += data.text;
  });
  gh.on("task.done", (data) => {
    const b = box();
    if (!b || String(data.task_id) !== b.dataset.task) return;
    const finish = () => {
      const st = document.querySelector("[data-task-status]");
      if (st) { st.textContent = data.status; st.className = `status task-${data.status}`; }
      const err = document.querySelector("[data-task-error]");
      if (err && data.error) { err.textContent = data.error; err.hidden = false; }
      const waiting = b.querySelector("[data-task-waiting]");
      if (waiting) waiting.remove();
      setTimeout(() => location.reload(), 300);
    };
    // Steps that ended before the event stream opened were never seen here:
    // take the whole stored log before showing the outcome.
    fetch(`/api/v1/tasks/${encodeURIComponent(b.dataset.task)}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((t) => {
        const log = b.querySelector("[data-task-log]");
        if (t && t.log && log) log.textContent = t.log;
      })
      .catch(() => {})
      .finally(finish);
  });
})();

// --- alerts and jobs (live incidents and job runs) ---
// Rows are built with textContent only: incident text comes from servers and
// rules and is never parsed as HTML.
(() => {
  "use strict";
  const gh = window.gatehouse;
  if (!gh) return;
  const cell = (text, field) => {
    const td = document.createElement("td");
    if (field) td.dataset.field = field;
    td.textContent = text == null ? "" : String(text);
    return td;
  };
  const syncEmpty = (tbody) => {
    const empty = document.getElementById("no-open-incidents");
    if (empty) empty.hidden = tbody.children.length > 0;
    const table = tbody.closest("table");
    if (table) table.hidden = tbody.children.length === 0;
  };
  // An incident names what it is about: a domain (linked to its TLS page),
  // a monitor, a server of an upstream, or a server.
  const subjectCell = (inc) => {
    const td = document.createElement("td");
    const link = (href, text) => {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text == null ? "" : String(text);
      return a;
    };
    const badged = (kind, ...rest) => {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = kind;
      td.append(badge, " ", ...rest);
    };
    if (inc.domain) {
      badged("domain", link("/domains/lookup?name=" + encodeURIComponent(inc.domain), inc.domain));
    } else if (inc.monitor) {
      badged("monitor", link("/monitors", inc.monitor));
    } else if (inc.upstream) {
      badged("upstream", link("/upstreams/lookup?name=" + encodeURIComponent(inc.upstream), inc.upstream), " " + (inc.address || ""));
    } else if (inc.server_id) {
      td.append(link("/servers/" + encodeURIComponent(inc.server_id), inc.server_name));
    } else {
      td.textContent = inc.server_name == null ? "" : String(inc.server_name);
    }
    return td;
  };
  gh.on("incident", (inc) => {
    const tbody = document.querySelector("#open-incidents tbody");
    if (!tbody || !inc) return;
    let row = tbody.querySelector(`[data-incident-id="${CSS.escape(String(inc.id))}"]`);
    if (inc.state === "resolved") {
      if (row) row.remove();
      syncEmpty(tbody);
      return;
    }
    if (!row) {
      row = document.createElement("tr");
      row.dataset.incidentId = String(inc.id);
      const state = document.createElement("td");
      const badge = document.createElement("span");
      badge.dataset.field = "state";
      state.append(badge);
      const actions = document.createElement("td");
      actions.className = "row-actions";
      const form = document.createElement("form");
      form.method = "post";
      form.action = `/alerts/incidents/${encodeURIComponent(inc.id)}/ack`;
      const btn = document.createElement("button");
      btn.className = "btn btn-small";
      btn.type = "submit";
      btn.textContent = "Ack";
      form.append(btn);
      actions.append(form);
      row.append(cell(inc.id), state, cell("", "severity"), cell(inc.rule_name), subjectCell(inc),
        cell("", "summary"), cell(new Date(inc.started_at).toLocaleString()), cell("", "acked_by"), actions);
      tbody.prepend(row);
    }
    row.dataset.state = inc.state;
    const badge = row.querySelector('[data-field="state"]');
    badge.textContent = inc.state;
    badge.className = `status status-${inc.state}`;
    row.querySelector('[data-field="severity"]').textContent = inc.severity;
    row.querySelector('[data-field="summary"]').textContent = inc.summary;
    row.querySelector('[data-field="acked_by"]').textContent = inc.acked_at ? inc.acked_by : "no";
    if (inc.acked_at) { const f = row.querySelector("form"); if (f) f.remove(); }
    syncEmpty(tbody);
  });
  gh.on("incident.gone", (d) => {
    const tbody = document.querySelector("#open-incidents tbody");
    if (!tbody || !d) return;
    const row = tbody.querySelector(`[data-incident-id="${CSS.escape(String(d.id))}"]`);
    if (row) row.remove();
    syncEmpty(tbody);
  });
  gh.on("job", (j) => {
    const row = j && document.querySelector(`[data-job="${CSS.escape(j.name)}"]`);
    if (!row) return;
    const cell = (field) => row.querySelector(`[data-field="${field}"]`);
    // The same words and formats as the page: a start just reported is
    // "just now"; times are UTC to the minute.
    const utc = (iso) => new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC";
    const stamp = (el, iso, text) => {
      if (!el) return;
      const t = document.createElement("time");
      t.dateTime = iso;
      t.title = utc(iso);
      t.textContent = text;
      el.replaceChildren(t);
    };
    if (j.last_started_at) stamp(cell("last_started_at"), j.last_started_at, "just now");
    const outcome = cell("last_outcome");
    if (outcome) {
      outcome.replaceChildren(j.running ? "running" : (j.last_outcome || ""));
      if (j.last_error) {
        const err = document.createElement("span");
        err.className = "field-error";
        err.textContent = j.last_error;
        outcome.append(" ", err);
      }
    }
    const took = cell("last_duration");
    if (took) took.textContent = j.last_duration || "";
    if (j.next_run_at) stamp(cell("next_run_at"), j.next_run_at, utc(j.next_run_at));
  });
})();

// === Alert rule form: only the fields that apply to the chosen type ===
// Field groups carry data-kinds="<codes>"; the others are hidden when the
// type changes, and the line under the select shows the chosen type's
// description from its option's data-description. Without this script every
// field shows and the server ignores those that do not apply.
(() => {
  "use strict";
  const sync = (form) => {
    const select = form.querySelector("select[data-rule-kind]");
    if (!select) return;
    const kind = select.value;
    for (const el of form.querySelectorAll("[data-kinds]")) {
      el.hidden = !el.dataset.kinds.split(/\s+/).includes(kind);
    }
    const line = document.getElementById(select.getAttribute("aria-describedby") || "");
    const option = select.selectedOptions[0];
    if (line) line.textContent = option ? (option.dataset.description || "") : "";
  };
  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form[data-rule-form]")) sync(form);
  });
  document.addEventListener("change", (ev) => {
    if (!(ev.target instanceof HTMLSelectElement) || !ev.target.matches("[data-rule-kind]")) return;
    const form = ev.target.closest("form[data-rule-form]");
    if (form) sync(form);
  });
})();

// === Pages that refresh themselves ===
// An element with data-auto-refresh="<seconds>" reloads the page after that
// long, for pages without live events (the public status page).
(() => {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.querySelector("[data-auto-refresh]");
    const seconds = el ? parseInt(el.dataset.autoRefresh, 10) : 0;
    if (seconds >= 10) setTimeout(() => location.reload(), seconds * 1000);
  });
})();
