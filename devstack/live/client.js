// devstack live reload: injected by nginx into the app's HTML pages (server.live_reload).
// Follows every edit and tells devstack what this tab applied, with the sha256 of the exact
// bytes it fetched: CSS in place (no navigation), files CSS references re-fetched in place,
// anything else a reload — after Python edits only once the new code serves.
(() => {
  "use strict";
  if (window.__devstackLive) return;
  window.__devstackLive = true;
  const KEY = "__devstack_live";
  const BUST = "__devstack";
  let tabId = 0;
  let backoff = 250;
  let socket = null;
  const blobs = new Map(); // blob: URL of an @import applied here -> the stylesheet's own URL

  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (buf) => (crypto.subtle ? hex(await crypto.subtle.digest("SHA-256", buf)) : "");
  const send = (msg) => { if (socket && socket.readyState === 1) socket.send(JSON.stringify(msg)); };
  const busted = (url, id) => { const u = new URL(url, location.href); u.searchParams.set(BUST, id); return u.href; };
  const samePath = (url, path, base) => {
    try { const u = new URL(url, base || location.href); return u.pathname === path ? u : null; } catch (e) { return null; }
  };
  const navStatus = () => { const nav = performance.getEntriesByType("navigation")[0]; return nav ? nav.responseStatus || 0 : 0; };

  // -- fetch + hash: the bytes this tab applies -------------------------------------------------
  async function fetchBody(url) {
    const resp = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    const buf = await resp.arrayBuffer();
    return { ok: resp.ok, status: resp.status, buf, text: new TextDecoder().decode(buf), resp, url };
  }
  // What the report says about those bytes: hashed after they are applied (the same buffer), so
  // the hash costs the edit nothing.
  async function proof(body) {
    const timing = performance.getEntriesByName(body.resp.url || body.url).pop();
    return {
      sha: await sha256(body.buf),
      cached: !!(timing && timing.transferSize === 0 && timing.decodedBodySize > 0),
      cacheHeaders: [body.resp.headers.get("cache-control"), body.resp.headers.get("expires")].filter(Boolean).join(", "),
      sw: !!(navigator.serviceWorker && navigator.serviceWorker.controller),
    };
  }
  const fetchHashed = async (url) => { const body = await fetchBody(url); return { ...body, ...(await proof(body)) }; };

  // The rules a sheet applies, as CSSOM text (its @import rules aside: each is checked itself).
  const rulesOf = (sheet) => Array.from(sheet.cssRules, (r) => (r instanceof CSSImportRule ? "" : r.cssText)).join("\n");
  function sameRules(sheet, text, baseURL) {
    try {
      const parsed = new CSSStyleSheet({ baseURL });
      parsed.replaceSync(text.replace(/@import[^;]*;/g, ""));
      return rulesOf(parsed) === rulesOf(sheet);
    } catch (e) { return false; }
  }

  // Relative URLs in a stylesheet resolve against its own address; its bytes applied elsewhere
  // (a <style>, a blob) keep working when they are made absolute first. Nothing else changes.
  const rebase = (text, base) =>
    text.replace(/url\(\s*(['"]?)([^'")\s]+)\1\s*\)|@import\s+(['"])([^'"]+)\3/g, (all, q, u, q2, u2) => {
      const raw = u || u2;
      if (/^(?:[a-z][a-z0-9+.-]*:|#)/i.test(raw)) return all; // data:, http:, a fragment
      const abs = new URL(raw, base).href;
      return u ? `url(${q}${abs}${q})` : `@import ${q2}${abs}${q2}`;
    });

  // Every place the page applies the stylesheet at path: <link>s (and the <style>s that replaced
  // them on an earlier edit), and @import rules at any depth.
  function stylesheetsAt(path) {
    const hits = [];
    let crossOrigin = "";
    const scan = (sheet) => {
      let rules;
      try { rules = sheet.cssRules; } catch (e) { return; } // another origin's sheet: not readable
      Array.from(rules).forEach((rule, index) => {
        if (!(rule instanceof CSSImportRule)) return;
        const u = samePath(blobs.get(rule.href) || rule.href, path, sheet.href || location.href);
        if (u) hits.push({ parent: sheet, index, rule, url: u.href });
        else if (rule.styleSheet) scan(rule.styleSheet);
      });
    };
    for (const el of document.querySelectorAll('link[rel~="stylesheet"], style')) {
      const href = el.tagName === "LINK" ? el.href : el.dataset.devstackHref;
      const u = href && samePath(href, path);
      if (u && u.origin !== location.origin) crossOrigin = u.origin;
      else if (u) hits.push({ el, url: u.href });
      else if (el.sheet) scan(el.sheet);
    }
    return { hits, crossOrigin };
  }

  // The fetched bytes become the stylesheet in the same place of the cascade, synchronously:
  // no second request, no flash of an unstyled page.
  function applyAt(hit, text, href) {
    const css = rebase(text, href);
    if (hit.el) {
      let style = hit.el;
      if (style.tagName === "LINK") {
        style = document.createElement("style");
        style.dataset.devstackHref = hit.url.split("?")[0];
        if (hit.el.media) style.media = hit.el.media;
        hit.el.replaceWith(style);
      }
      style.textContent = css;
      return style;
    }
    // An @import: the same bytes from a blob (its relative URLs were made absolute above).
    const media = hit.rule.media.mediaText;
    const blob = URL.createObjectURL(new Blob([css], { type: "text/css" }));
    hit.parent.deleteRule(hit.index);
    hit.parent.insertRule(`@import url("${blob}")${media ? " " + media : ""};`, hit.index);
    blobs.set(blob, hit.url.split("?")[0]); // found again by its own path on the next edit
    return null;
  }

  async function applyCss(msg) {
    const { hits, crossOrigin } = stylesheetsAt(msg.path);
    if (!hits.length) return send({ t: "applied", id: msg.id, status: crossOrigin ? "error" : "unused", crossOrigin, error: crossOrigin && "cross-origin stylesheet" });
    const href = busted(hits[0].url, msg.id);
    try {
      const body = await fetchBody(href);
      const styles = body.ok ? hits.map((hit) => applyAt(hit, body.text, href)) : [];
      const facts = await proof(body);
      for (const style of styles) if (style) style.dataset.devstackSha = facts.sha;
      send({ t: "applied", id: msg.id, status: body.ok ? "applied" : "error", error: body.ok ? "" : `HTTP ${body.status}`,
             same: true, ...facts });
    } catch (e) {
      send({ t: "applied", id: msg.id, status: "error", error: String(e) });
    }
  }

  // An image or font: every url() that names it (in every readable sheet), and <img>s.
  async function applyAsset(msg) {
    const href = busted(msg.path, msg.id);
    let used = 0;
    const visit = (sheet) => {
      let rules;
      try { rules = sheet.cssRules; } catch (e) { return; }
      for (const rule of rules) {
        if (rule.styleSheet) visit(rule.styleSheet);
        if (rule.cssRules) visit(rule);
        if (!rule.style) continue;
        for (const prop of Array.from(rule.style)) {
          const value = rule.style.getPropertyValue(prop);
          if (!value.includes("url(")) continue;
          const next = value.replace(/url\((['"]?)([^'")]+)\1\)/g, (all, q, url) => {
            if (!samePath(url, msg.path, sheet.href || location.href)) return all;
            used += 1;
            return `url("${href}")`;
          });
          if (next !== value) rule.style.setProperty(prop, next, rule.style.getPropertyPriority(prop));
        }
      }
    };
    for (const sheet of document.styleSheets) visit(sheet);
    for (const img of document.images) if (samePath(img.src, msg.path)) { img.src = href; used += 1; }
    if (!used) return send({ t: "applied", id: msg.id, status: "unused" });
    try {
      const body = await fetchHashed(href);
      send({ t: "applied", id: msg.id, status: body.ok ? "applied" : "error", error: body.ok ? "" : `HTTP ${body.status}`,
             sha: body.sha, cached: body.cached, cacheHeaders: body.cacheHeaders });
    } catch (e) {
      send({ t: "applied", id: msg.id, status: "error", error: String(e) });
    }
  }

  function reload(msg) {
    try { sessionStorage.setItem(KEY, JSON.stringify({ reloadOf: msg.id, prevTab: tabId })); } catch (e) { /* private mode */ }
    location.reload();
  }

  // -- the error overlay: the line devstack logs, over the page, until the fix serves -------------
  function overlay(text) {
    let host = document.getElementById("__devstack_overlay");
    if (!host) {
      host = document.createElement("div");
      host.id = "__devstack_overlay";
      host.style.cssText = "position:fixed;inset:0;z-index:2147483647;pointer-events:none";
      host.attachShadow({ mode: "open" });
      (document.body || document.documentElement).appendChild(host);
    }
    host.shadowRoot.innerHTML = `<style>
      .box{position:absolute;left:0;right:0;top:0;margin:2rem auto;max-width:52rem;padding:1.2rem 1.4rem;
        background:#1e1e1e;color:#f3f3f3;border-left:6px solid #e5484d;border-radius:6px;pointer-events:auto;
        font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;box-shadow:0 10px 40px rgba(0,0,0,.45)}
      .head{color:#ff8589;font-weight:bold;margin-bottom:.5rem}.tail{color:#a0a0a0;margin-top:.8rem}
      pre{white-space:pre-wrap;margin:0}</style>
      <div class="box" role="alert"><div class="head">devstack: the new code does not serve</div>
      <pre></pre><div class="tail">This tab reloads by itself as soon as a fix serves.</div></div>`;
    host.shadowRoot.querySelector("pre").textContent = text;
  }

  // -- doctor's rung: what each stylesheet of this tab is, hashed -------------------------------
  async function reportSheets(msg) {
    const sheets = [];
    for (const link of document.querySelectorAll('link[rel~="stylesheet"]')) {
      const u = new URL(link.href, location.href);
      if (u.origin !== location.origin || !link.sheet) continue;
      try {
        // force-cache: the copy the browser holds for that URL, if it holds one (what it applied).
        const resp = await fetch(u.href, { cache: "force-cache" });
        const buf = await resp.arrayBuffer();
        sheets.push({ path: u.pathname, sha: await sha256(buf), same: sameRules(link.sheet, new TextDecoder().decode(buf), u.href) });
      } catch (e) { sheets.push({ path: u.pathname, error: String(e) }); }
    }
    for (const style of document.querySelectorAll("style[data-devstack-href]")) {
      sheets.push({ path: new URL(style.dataset.devstackHref, location.href).pathname, sha: style.dataset.devstackSha, same: true });
    }
    send({ t: "sheets", id: msg.id, sheets });
  }

  const handlers = { css: applyCss, asset: applyAsset, reload, overlay: (m) => overlay(m.text), sheets: reportSheets,
                     hello: (m) => { tabId = m.tab; window.__devstackTab = m.tab; } }; // the hub knows this tab now

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/__devstack/ws`);
    socket.onopen = () => {
      backoff = 250;
      let after = {};
      try { after = JSON.parse(sessionStorage.getItem(KEY) || "{}"); sessionStorage.removeItem(KEY); } catch (e) { /* none */ }
      send({ t: "hello", title: document.title, path: location.pathname + location.search, origin: location.origin,
             sw: !!(navigator.serviceWorker && navigator.serviceWorker.controller), status_code: navStatus(), ...after });
    };
    socket.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      const handler = handlers[msg.t];
      if (handler) handler(msg);
    };
    socket.onclose = () => { socket = null; setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 5000); };
  }
  connect();
})();
