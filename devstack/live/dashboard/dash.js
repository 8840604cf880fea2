// devstack's dashboard: everything arrives over one WebSocket (/__devstack/ws), pushed by the
// stack; the page never polls. Every text from the stack is set with textContent (a log line
// is data, never markup). Actions are POSTs carrying the token this page was served with.
(function () {
  "use strict";
  const TOKEN = document.querySelector('meta[name="devstack-token"]').content;
  const ROW_H = 18;
  const MAX_LINES = 50000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const state = { procs: [], feed: [], resolved: new Set(), sources: new Map(), lines: [], shown: [],
                  follow: true, query: "", dirty: false, pendingNew: 0 };
  // Read by the tests and benchmarks/bench_dashboard.py: connected, lines kept, rows rendered.
  const probe = (window.__devstackDash = { rendered: 0, lines: 0, received: 0, skipped: 0, connected: false });

  // -- actions ---------------------------------------------------------------------------------
  async function post(action, body) {
    const resp = await fetch("/__devstack/api/" + action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Devstack-Token": TOKEN },
      body: JSON.stringify(body || {}),
    });
    let answer = {};
    try { answer = await resp.json(); } catch (e) { /* empty */ }
    if (!resp.ok) alert(answer.error || ("HTTP " + resp.status));
    return answer;
  }
  $("doctor-run").addEventListener("click", () => post("doctor"));

  // -- formatting ------------------------------------------------------------------------------
  const ago = (secs) => secs == null ? "-" : secs < 60 ? secs.toFixed(0) + " s" :
    secs < 3600 ? (secs / 60).toFixed(0) + " min" : (secs / 3600).toFixed(1) + " h";
  const mib = (bytes) => bytes == null ? "-" : (bytes / 1048576).toFixed(1) + " MiB";
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");
  function badge(id, text, ok) {
    const node = $(id);
    node.textContent = text;
    node.className = "badge " + (ok === null ? "" : ok ? "ok" : "bad");
  }

  // -- stack and processes ---------------------------------------------------------------------
  function renderStack(stack) {
    if (!stack) return;
    const badge = $("status");
    badge.textContent = stack.status;
    badge.className = "badge " + (stack.status === "ready" ? "ok" : "bad");
    $("url").textContent = stack.url ? stack.url + "/" : "";
    const upErr = $("up-error");
    upErr.hidden = !stack.error;
    upErr.textContent = stack.error ? "last failure of up: " + stack.error : "";
    const appErr = $("app-error");
    appErr.hidden = !stack.app_error;
    appErr.textContent = stack.app_error ? "the app does not start: " + stack.app_error : "";
  }
  function renderProcs(procs) {
    state.procs = procs;
    const body = $("procs").tBodies[0];
    const rows = procs.map((p) => {
      const tr = el("tr", p.crash_loop ? "crash-loop" : "");
      tr.dataset.name = p.name;
      tr.append(el("td", "", p.name), el("td", p.state, p.state + (p.retry_in != null ? " (retry in " + p.retry_in + " s)" : "")),
        el("td", "num pid", p.pid == null ? "-" : p.pid), el("td", "num uptime", p.started == null ? "-" : ago(Date.now() / 1000 - p.started)),
        el("td", "num restarts" + (p.crashes ? " bad" : ""), p.restarts),
        el("td", "num", p.cpu == null ? "-" : p.cpu.toFixed(1) + " %"), el("td", "num", mib(p.rss)));
      const last = el("td", "last", p.last);
      last.title = p.last;
      const act = el("td");
      const btn = el("button", "restart", "Restart");
      btn.type = "button";
      btn.setAttribute("aria-label", "restart " + p.name);
      btn.addEventListener("click", () => post("restart", { name: p.name }));
      act.append(btn);
      tr.append(last, act);
      return tr;
    });
    // Keep the focused button focused across a refresh (keyboard users).
    const focused = document.activeElement && document.activeElement.closest("tr[data-name]");
    const name = focused && focused.dataset.name;
    body.replaceChildren(...rows);
    const up = procs.filter((p) => p.state === "running").length;
    const looping = procs.filter((p) => p.crash_loop).map((p) => p.name);
    badge("sum-procs", up === procs.length ? "all " + procs.length + " processes up" :
      up + "/" + procs.length + " processes up" + (looping.length ? " · crash loop: " + looping.join(", ") : ""), up === procs.length);
    if (name) { const again = body.querySelector('tr[data-name="' + CSS.escape(name) + '"] button'); if (again) again.focus(); }
    for (const p of procs) addSource(p.name);
  }

  // Uptimes count up in the page: the stack sends a process list only when something changed.
  setInterval(() => {
    for (const p of state.procs) {
      const cell = document.querySelector('#procs tr[data-name="' + CSS.escape(p.name) + '"] td.uptime');
      if (cell && p.started != null) cell.textContent = ago(Date.now() / 1000 - p.started);
    }
  }, 1000);

  // -- feed, reloads, tabs ---------------------------------------------------------------------
  function renderFeed() {
    const list = $("feed"), reloads = $("reloads");
    const rows = state.feed.filter((r) => r.verdict === "fresh" || r.verdict === "stale" || r.verdict === "note");
    const edits = rows.filter((r) => r.verdict !== "note");
    const last = edits[edits.length - 1];
    if (last) badge("sum-edit", "last edit " + (last.file || "") + ": " + (last.verdict === "fresh" ? "served fresh" : "STALE"), last.verdict === "fresh");
    // Open STALE rows first (they stay until resolved), then the newest edits.
    const open = rows.filter((r) => r.open && !state.resolved.has(r.id));
    const rest = rows.filter((r) => !(r.open && !state.resolved.has(r.id))).slice(-60).reverse();
    const items = [...open, ...rest].map(feedItem);
    list.replaceChildren(...(items.length ? items : [el("li", "empty", "no static edit yet: save a file under the static folder")]));
    const count = $("stale-count");
    count.hidden = open.length === 0;
    count.textContent = open.length + " STALE";
    const rel = state.feed.filter((r) => r.verdict === "reload" || r.verdict === "error").slice(-30).reverse();
    reloads.replaceChildren(...(rel.length ? rel.map((r) => {
      const li = el("li", r.verdict);
      li.append(el("span", "muted", clock(r.at) + " "), el("strong", r.verdict, r.ms != null ? r.ms + " ms " : r.verdict + " "), el("span", "line", r.line));
      return li;
    }) : [el("li", "empty", "no code edit yet")]));
  }
  function feedItem(r) {
    const isOpen = r.open && !state.resolved.has(r.id);
    const li = el("li", isOpen ? "open" : "");
    li.dataset.verdict = r.verdict;
    li.append(el("span", "muted", clock(r.at) + " "), el("strong", r.verdict, r.verdict.toUpperCase() + " "), el("span", "line", r.line));
    if (r.tabs && r.tabs.length) {
      const proofs = r.tabs.map((t) => "tab " + t.tab + ": " + t.status + (t.sha ? " " + t.sha : "") + (t.ms != null ? " in " + t.ms + " ms" : "") + (t.ok ? " ✓" : " ✗"));
      li.append(el("div", "proofs", proofs.join(" · ")));
    }
    if (isOpen) {
      const btn = el("button", "clear", "Clear");
      btn.type = "button";
      btn.setAttribute("aria-label", "clear the STALE row of " + r.file);
      btn.addEventListener("click", () => post("clear-stale", { file: r.file }));
      li.append(" ", btn);
    }
    return li;
  }
  function renderTabs(tabs) {
    const body = $("tabs").tBodies[0];
    const rows = tabs.map((t) => {
      const tr = el("tr");
      tr.append(el("td", "", t.title || "(untitled)"), el("td", "", t.path), el("td", "", t.file || "-"), el("td", "last", t.sha || "-"));
      return tr;
    });
    body.replaceChildren(...(rows.length ? rows : [(() => { const tr = el("tr"); const td = el("td", "muted", "no tab open: open the app's URL"); td.colSpan = 4; tr.append(td); return tr; })()]));
  }

  // -- doctor ----------------------------------------------------------------------------------
  function renderDoctor(d) {
    const box = $("doctor"), label = $("doctor-state");
    $("doctor-run").disabled = d.state === "running";
    if (d.state === "never") { label.textContent = "not run yet"; box.replaceChildren(); return; }
    if (d.state === "running") { label.textContent = "running…"; badge("sum-doctor", "doctor: running…", null); return; }
    if (d.state === "failed") { label.textContent = d.error; box.replaceChildren(); badge("sum-doctor", "doctor: failed", false); return; }
    const report = d.report || {};
    const s = report.summary || {};
    label.textContent = "at " + clock(d.started) + " (" + d.took + " s): " + plural(s.error || 0, "error") + ", " + plural(s.warning || 0, "warning") + ", " + (s.ok || 0) + " ok";
    badge("sum-doctor", "doctor: " + (s.error ? plural(s.error, "error") : s.warning ? plural(s.warning, "warning") : "all clear"), !s.error && !s.warning);
    const findings = (report.checks || []).filter((c) => c.status === "error" || c.status === "warning" || c.status === "info");
    box.replaceChildren(...(findings.length ? findings.map((c) => {
      const div = el("div", "finding " + c.status);
      div.append(el("strong", c.status, c.status + " "), el("span", "", c.id + " — " + c.finding));
      for (const ev of c.evidence || []) div.append(el("div", "ev", (ev.where ? ev.where + ": " : "") + ev.text));
      if (c.fix) div.append(el("p", "", "fix: " + c.fix));
      return div;
    }) : [el("p", "ok", "every check passed")]));
  }

  // -- logs: a ring of lines, only the visible rows are in the DOM ------------------------------
  function addSource(name) {
    if (!name || state.sources.has(name)) return;
    const label = el("label");
    const box = el("input");
    box.type = "checkbox"; box.checked = true; box.dataset.source = name;
    box.addEventListener("change", () => { state.sources.set(name, box.checked); refilter(); });
    label.append(box, " " + name);
    $("sources").append(label);
    state.sources.set(name, true);
  }
  const visible = (line) => state.sources.get(line.src) !== false && (!state.query || line.text.toLowerCase().includes(state.query));
  function refilter() {
    state.shown = state.lines.filter(visible);
    state.dirty = true;
    schedule();
  }
  function addLogs(rows, skipped) {
    probe.skipped += skipped || 0;
    if (skipped) pushLine({ t: Date.now() / 1000, src: "devstack", stream: "skipped", color: "33", text: "… " + skipped + " lines skipped (a burst: the newest are shown; `devstack logs` has them all)" });
    for (const [t, src, stream, color, text] of rows) {
      addSource(src);
      const parts = text.split("\n");
      if (parts[parts.length - 1] === "") parts.pop();
      for (const part of parts) pushLine({ t, src, stream, color, text: part });
      probe.received += parts.length;
    }
    if (state.lines.length > MAX_LINES * 1.2) {
      state.lines = state.lines.slice(-MAX_LINES);
      state.shown = state.lines.filter(visible);
    }
    probe.lines = state.lines.length;
    if (state.follow) { state.dirty = true; schedule(); }
    else { state.pendingNew += rows.length; $("log-count").textContent = state.pendingNew + " new blocks (paused)"; }
  }
  function pushLine(line) {
    line.lower = undefined;
    state.lines.push(line);
    if (visible(line)) state.shown.push(line);
  }
  let frame = 0;
  function schedule() { if (!frame) frame = requestAnimationFrame(render); }
  const view = $("log-view");
  view.addEventListener("scroll", () => {
    const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - ROW_H;
    if (!atBottom && state.follow && !state.autoScrolling) setFollow(false);
    state.autoScrolling = false;
    state.dirty = true; schedule();
  });
  function setFollow(on) {
    state.follow = on;
    $("follow").setAttribute("aria-pressed", String(on));
    $("follow").textContent = on ? "following" : "paused — follow";
    if (on) { state.pendingNew = 0; $("log-count").textContent = ""; state.dirty = true; schedule(); }
  }
  $("follow").addEventListener("click", () => setFollow(!state.follow));
  $("search").addEventListener("input", (e) => { state.query = e.target.value.toLowerCase(); refilter(); });
  function render() {
    frame = 0;
    if (!state.dirty) return;
    state.dirty = false;
    const total = state.shown.length;
    $("log-spacer").style.height = total * ROW_H + "px";
    if (state.follow) { state.autoScrolling = true; view.scrollTop = total * ROW_H; }
    const first = Math.max(0, Math.floor(view.scrollTop / ROW_H) - 5);
    const count = Math.ceil(view.clientHeight / ROW_H) + 10;
    const rows = [];
    for (let i = first; i < Math.min(total, first + count); i++) {
      const line = state.shown[i];
      const div = el("div", "row " + line.stream);
      div.append(el("span", "src c" + line.color, line.src), el("span", "txt", " " + line.text));
      rows.push(div);
    }
    const box = $("log-rows");
    box.style.transform = "translateY(" + first * ROW_H + "px)";
    box.replaceChildren(...rows);
    probe.rendered++;
  }

  // -- the connection --------------------------------------------------------------------------
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__devstack/ws");
    ws.onopen = () => { ws.send(JSON.stringify({ t: "dash", token: TOKEN })); $("conn").textContent = ""; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      switch (msg.t) {
        case "snapshot":
          probe.connected = true;
          renderStack(msg.stack); renderProcs(msg.procs); renderTabs(msg.tabs); renderDoctor(msg.doctor);
          state.feed = msg.feed; state.resolved = new Set(); renderFeed();
          state.lines = []; state.shown = []; addLogs(msg.logs, 0);
          break;
        case "procs": renderStack(msg.stack); renderProcs(msg.procs); break;
        case "tabs": renderTabs(msg.tabs); break;
        case "feed":
          state.feed = state.feed.concat(msg.rows).slice(-200);
          state.resolved = new Set(msg.resolved); renderFeed(); break;
        case "logs": addLogs(msg.rows, msg.skipped); break;
        case "doctor": renderDoctor(msg.doctor); break;
      }
    };
    ws.onclose = () => {
      probe.connected = false;
      $("conn").textContent = "· disconnected (devstack stopped?), retrying…";
      $("status").textContent = "disconnected"; $("status").className = "badge bad";
      setTimeout(connect, 1000);
    };
  }
  connect();
})();
