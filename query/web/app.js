// clicktrail dashboards: one script, no dependencies, no build step. Every figure on a page
// comes from the JSON API the page's user may call (cookie session; state-changing requests
// send the X-CSRF-Token the ct_csrf cookie holds). Charts are SVG drawn by the server.
"use strict";
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const tz = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "UTC";
  const ints = new Intl.NumberFormat("en-US");

  /** Builds an element; children are nodes or text (never parsed as HTML). */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "on") { for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f); }
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return v.join("=");
    }
    return "";
  }

  class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }

  // At most two requests at once: the query service runs two queries per caller at a time
  // (`--query-per-caller`) and answers more with 429.
  const queue = [];
  let running = 0;
  function limited(f) {
    return new Promise((resolve, reject) => {
      queue.push(() => f().then(resolve, reject));
      pump();
    });
  }
  function pump() {
    while (running < 2 && queue.length) {
      const job = queue.shift();
      running += 1;
      job().finally(() => { running -= 1; pump(); });
    }
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Fetches through the queue, waiting out a 429 (Retry-After) up to three times. */
  async function send(path, init) {
    for (let attempt = 0; ; attempt++) {
      const res = await limited(() => fetch(path, init));
      if (res.status !== 429 || attempt >= 3) return res;
      await sleep(1000 * Math.max(1, Number(res.headers.get("Retry-After")) || 1));
    }
  }

  /** Calls the JSON API; a 401 outside the login routes goes to the login page. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = cookie("ct_csrf");
    const res = await send(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
    if (res.status === 401 && !path.startsWith("/api/v1/auth/") && !path.startsWith("/api/v1/me/password")) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, "Your session has ended: log in again.");
    }
    if (!res.ok) {
      let msg = (data && data.message) || res.statusText;
      if (data && Array.isArray(data.fields) && data.fields.length) {
        msg += " (" + data.fields.map((f) => f.field + ": " + f.message).join("; ") + ")";
      }
      throw new ApiError(res.status, msg);
    }
    return data;
  }

  function status(text) { const s = $("#status"); if (s) s.textContent = text || ""; }
  function fail(target, e) {
    const t = typeof target === "string" ? $(target) : target;
    if (t) t.textContent = e.message || String(e);
  }

  function money(minor, currency) {
    let digits = 2;
    try { digits = new Intl.NumberFormat("en-US", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; } catch (_) { /* unknown code */ }
    const f = new Intl.NumberFormat("en-US", { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
    return f.format(Number(minor) / Math.pow(10, digits));
  }
  const revenueText = (list) => (list && list.length) ? list.map((r) => money(r.amount_minor, r.currency)).join(", ") : "—";
  const pct = (x) => (x * 100).toFixed(1) + "%";
  const date = (s) => s ? new Date(s).toLocaleString("en-GB", { timeZone: tz, dateStyle: "medium", timeStyle: "short" }) : "—";

  // ---------------------------------------------------------------- date range
  function ymd(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); }
  function nextDay(s) { const [y, m, d] = s.split("-").map(Number); return ymd(new Date(y, m - 1, d + 1)); }

  /** The query string of the chosen range, or throws with what to fix. */
  function rangeParams() {
    const p = new URLSearchParams();
    const preset = $("#range-preset").value;
    if (preset === "custom") {
      const from = $("#range-from").value, to = $("#range-to").value;
      if (!from || !to) throw new Error("Choose both dates of the custom range.");
      if (to < from) throw new Error("The end date is before the start date.");
      p.set("from", from); p.set("to", nextDay(to));
    } else {
      p.set("period", preset);
    }
    let interval = $("#range-interval").value;
    if (interval === "auto") interval = preset === "today" ? "hour" : "day";
    p.set("interval", interval);
    p.set("tz", tz);
    const adv = $("#range-advertiser");
    if (adv && adv.value) p.set("advertiser_id", adv.value);
    return p;
  }

  function restoreRange() {
    const q = new URLSearchParams(location.search);
    if (q.get("from") && q.get("to")) {
      $("#range-preset").value = "custom";
      $("#range-from").value = q.get("from");
      const [y, m, d] = q.get("to").split("-").map(Number);
      if (y) $("#range-to").value = ymd(new Date(y, m - 1, d - 1));
    } else if (q.get("period")) {
      $("#range-preset").value = q.get("period");
    }
    if (q.get("interval")) $("#range-interval").value = q.get("interval");
    const adv = $("#range-advertiser");
    if (adv && q.get("advertiser_id")) adv.value = q.get("advertiser_id");
    showCustom();
    $("#range-tz").textContent = tz;
  }
  let lastPeriod = null;
  function showCustom() {
    const custom = $("#range-preset").value === "custom";
    $$(".controls .custom").forEach((d) => { d.hidden = !custom; });
    if (custom && !$("#range-from").value) {
      // Start from the range shown, else the last 14 days.
      const to = lastPeriod && lastPeriod.to ? new Date(new Date(lastPeriod.to).getTime() - 1) : new Date();
      const from = lastPeriod && lastPeriod.from ? new Date(lastPeriod.from) : new Date(to.getFullYear(), to.getMonth(), to.getDate() - 13);
      $("#range-to").value = ymd(to);
      $("#range-from").value = ymd(from);
    }
  }

  /** The same filters for the period to compare with (from the API's answer): today against
   * yesterday up to the same time, any other period against the one of the same length just
   * before it. */
  function previousParams(params, period) {
    if (!period || !period.from) return null;
    const from = new Date(period.from), to = period.to ? new Date(period.to) : new Date();
    const p = new URLSearchParams(params);
    p.delete("period"); p.delete("interval");
    const shift = params.get("period") === "today" ? 86400e3 : to.getTime() - from.getTime();
    p.set("from", new Date(from.getTime() - shift).toISOString());
    p.set("to", new Date(to.getTime() - shift).toISOString());
    return p;
  }

  // ---------------------------------------------------------------- widgets
  function scorecard(metric, label, value, text, prev) {
    if (text === undefined || text === null) text = "—";
    let delta = "no earlier figures";
    let cls = "delta";
    if (prev !== null && prev !== undefined) {
      if (prev === 0) delta = value === 0 ? "no change vs previous period" : "new vs previous period";
      else {
        const ch = (value - prev) / prev;
        delta = (ch >= 0 ? "▲ " : "▼ ") + Math.abs(ch * 100).toFixed(1) + "% vs previous period";
        cls += ch > 0 ? " up" : ch < 0 ? " down" : "";
      }
    }
    return el("div", { class: "score", "data-metric": metric },
      el("div", { class: "label" }, label),
      el("div", { class: "value", "data-value": value, title: text }, text),
      el("div", { class: cls }, delta));
  }

  /** A sortable table; `cols`: {key, label, num, fmt(row), sortValue(row)}. */
  function table(container, cols, rows, opts) {
    const o = opts || {};
    let sortKey = o.sortKey || null, asc = false;
    function render() {
      const sorted = rows.slice();
      if (sortKey) {
        const c = cols.find((x) => x.key === sortKey);
        const v = (r) => (c.sortValue ? c.sortValue(r) : r[c.key]);
        sorted.sort((a, b) => { const x = v(a), y = v(b); const r = x < y ? -1 : x > y ? 1 : 0; return asc ? r : -r; });
      }
      const head = el("tr", {}, cols.map((c) => {
        const sortState = c.key === sortKey ? (asc ? "ascending" : "descending") : "none";
        const content = c.nosort ? c.label : el("button", { type: "button", on: { click: () => { asc = c.key === sortKey ? !asc : !!c.asc; sortKey = c.key; render(); } } }, c.label);
        return el("th", { scope: "col", class: c.num ? "num" : null, "aria-sort": c.nosort ? null : sortState }, content);
      }));
      const body = sorted.map((r) => el("tr", { "data-id": r.id || null }, cols.map((c) => {
        const v = c.fmt ? c.fmt(r) : (r[c.key] === null || r[c.key] === undefined ? "—" : r[c.key]);
        return el("td", { class: c.num ? "num" : null, "data-col": c.key }, v);
      })));
      const t = el("table", {}, o.caption ? el("caption", { class: "sr-only" }, o.caption) : null, el("thead", {}, head), el("tbody", {}, body));
      container.replaceChildren(rows.length ? t : el("p", { class: "muted" }, o.empty || "Nothing in this period."));
    }
    render();
  }

  const breakdownCols = (nameLabel) => [
    { key: "name", label: nameLabel, fmt: (r) => r.name || r.id, asc: true },
    { key: "clicks", label: "Clicks", num: true, fmt: (r) => ints.format(r.clicks) },
    { key: "unique_clicks", label: "Unique clicks", num: true, fmt: (r) => ints.format(r.unique_clicks) },
    { key: "add_to_carts", label: "Add-to-carts", num: true, fmt: (r) => ints.format(r.add_to_carts) },
    { key: "purchases", label: "Purchases", num: true, fmt: (r) => ints.format(r.purchases) },
    { key: "revenue", label: "Revenue", num: true, fmt: (r) => revenueText(r.revenue), sortValue: (r) => (r.revenue || []).reduce((s, x) => s + Number(x.amount_minor), 0) },
    { key: "conversion_rate", label: "Conversion rate", num: true, fmt: (r) => (r.unique_clicks ? pct(r.conversion_rate) : "—") },
  ];

  /** Puts the server-drawn SVG chart at `url` into `box`. */
  async function chart(box, url) {
    const res = await send(url, { credentials: "same-origin" });
    if (!res.ok) { box.replaceChildren(el("p", { class: "error" }, "The chart could not be drawn: " + res.statusText)); return; }
    const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName !== "svg") { box.replaceChildren(el("p", { class: "error" }, "The chart could not be drawn.")); return; }
    svg.setAttribute("aria-label", box.dataset.alt || svg.getAttribute("aria-label") || "Chart");
    svg.setAttribute("viewBox", "0 0 " + svg.getAttribute("width") + " " + svg.getAttribute("height"));
    svg.removeAttribute("width"); svg.removeAttribute("height");
    box.replaceChildren(document.importNode(svg, true));
  }

  function copyButton(text, label) {
    return el("button", { type: "button", class: "small", "aria-label": label, on: { click: async (ev) => {
      try { await navigator.clipboard.writeText(text); ev.target.textContent = "Copied"; }
      catch (_) { ev.target.textContent = "Select and copy"; }
    } } }, "Copy");
  }

  // ---------------------------------------------------------------- dashboards
  async function dashboard(mine) {
    const base = mine ? "/api/v1/me/stats/" : "/api/v1/stats/";
    restoreRange();
    $("#range-preset").addEventListener("change", showCustom);
    const load = async () => {
      let params;
      try { params = rangeParams(); } catch (e) { status(e.message); return; }
      history.replaceState(null, "", location.pathname + "?" + params.toString());
      status("Loading…");
      const qs = params.toString();
      try {
        const overview = await api("GET", base + "overview?" + qs);
        lastPeriod = overview.period;
        const prevQ = previousParams(params, overview.period);
        let prev = null;
        if (prevQ) { try { prev = await api("GET", base + "overview?" + prevQ.toString()); } catch (_) { prev = null; } }
        const cards = [];
        const p = (k) => (prev ? prev[k] : null);
        cards.push(scorecard("clicks", "Clicks", overview.clicks, ints.format(overview.clicks), p("clicks")));
        cards.push(scorecard("unique_clicks", "Unique clicks", overview.unique_clicks, ints.format(overview.unique_clicks), p("unique_clicks")));
        if (!mine) {
          cards.push(scorecard("add_to_carts", "Add-to-carts", overview.add_to_carts, ints.format(overview.add_to_carts), p("add_to_carts")));
          cards.push(scorecard("purchases", "Purchases", overview.purchases, ints.format(overview.purchases), p("purchases")));
          cards.push(scorecard("drop_offs", "Drop-offs", overview.drop_offs, ints.format(overview.drop_offs), p("drop_offs")));
        } else {
          cards.push(scorecard("purchases", "Sales", overview.purchases, ints.format(overview.purchases), p("purchases")));
        }
        const revs = overview.revenue.length ? overview.revenue : [];
        for (const r of revs) {
          const before = prev ? (prev.revenue.find((x) => x.currency === r.currency) || { amount_minor: 0 }).amount_minor : null;
          cards.push(scorecard("revenue-" + r.currency, (mine ? "Sales value " : "Revenue ") + r.currency, Number(r.amount_minor), money(r.amount_minor, r.currency), before === null ? null : Number(before)));
        }
        if (!revs.length) cards.push(scorecard("revenue", mine ? "Sales value" : "Revenue", 0, "—", null));
        cards.push(scorecard("conversion_rate", "Conversion rate", overview.conversion_rate, overview.unique_clicks ? pct(overview.conversion_rate) : "—", p("conversion_rate")));
        $("#scorecards").replaceChildren(...cards);

        await Promise.all(["traffic", "conversions"].map((kind) => {
          const box = $("#chart-" + kind);
          const width = Math.max(280, Math.min(1600, Math.round(box.clientWidth || 640)));
          const height = width < 480 ? 240 : 280;
          return chart(box, base + "chart.svg?kind=" + kind + "&width=" + width + "&height=" + height + "&" + qs);
        }));
        if (!mine) {
          const f = await api("GET", base + "funnel?" + qs);
          const names = { landing: "Landing (unique clicks)", add_to_cart: "Add to cart", purchase: "Purchase" };
          table($("#funnel"), [
            { key: "step", label: "Step", fmt: (r) => names[r.step] || r.step, nosort: true },
            { key: "count", label: "Count", num: true, fmt: (r) => ints.format(r.count), nosort: true },
            { key: "rate", label: "From previous step", num: true, fmt: (r) => (r.rate_from_previous === undefined ? "—" : pct(r.rate_from_previous)), nosort: true },
          ], f.steps.map((s) => ({ ...s, id: s.step })), { empty: "No funnel yet." });
          const exportQ = new URLSearchParams(params); exportQ.delete("interval");
          $("#export-events").href = "/api/v1/export/events.csv?" + exportQ.toString();
          $("#export-clicks").href = "/api/v1/export/clicks.csv?" + exportQ.toString();
        }
        await Promise.all($$(".table[data-source]").map(async (t) => {
          const rows = (await api("GET", base + t.dataset.source + "?" + qs)).rows;
          table(t, breakdownCols(t.dataset.key), rows, { sortKey: "clicks", caption: t.dataset.key });
        }));
        if (!mine) await recentEvents(params);
        else await myCampaigns();
        status("Updated " + new Date().toLocaleTimeString("en-GB", { timeZone: tz }) + ".");
      } catch (e) { status(e.message); }
    };
    $("#range").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    await load();
  }

  // ---------------------------------------------------------------- newsletter promos
  /** A CTR with its interval: "0.25% (0.09–0.73%)"; "—" without recipients. */
  const ctrText = (f) => f.impressions ? (f.ctr * 100).toFixed(2) + "% (" + (f.ctr_low * 100).toFixed(2) + "–" + (f.ctr_high * 100).toFixed(2) + "%)" : "—";
  const revenueOf = (map) => revenueText(Object.entries(map || {}).map(([currency, amount_minor]) => ({ currency, amount_minor })));
  const flaggedOf = (f) => Object.values(f.flagged_clicks || {}).reduce((a, b) => a + b, 0);

  async function promos() {
    restoreRange();
    $("#range-interval").closest("div").hidden = true; // one point per day
    $("#range-preset").addEventListener("change", showCustom);
    const load = async () => {
      let params;
      try { params = rangeParams(); } catch (e) { status(e.message); return; }
      history.replaceState(null, "", location.pathname + "?" + params.toString());
      const q = new URLSearchParams(params); q.delete("interval");
      status("Loading…");
      try {
        const a = await api("GET", "/api/v1/promo/analytics?include_timeline=true&" + q.toString());
        lastPeriod = a.period;
        const s = a.summary;
        const card = (metric, label, value, text, note) => el("div", { class: "score", "data-metric": metric },
          el("div", { class: "label" }, label), el("div", { class: "value", "data-value": value, title: text }, text),
          el("div", { class: "delta" }, note));
        const interval = s.impressions ? "95 %: " + (s.ctr_low * 100).toFixed(2) + "–" + (s.ctr_high * 100).toFixed(2) + "%" : "no sends";
        $("#promo-scorecards").replaceChildren(
          card("impressions", "Recipients", s.impressions, ints.format(s.impressions), ints.format(s.sends) + " sends"),
          card("clicks", "Clicks", s.clicks, ints.format(s.clicks), "by people"),
          card("unique_clicks", "Unique clicks", s.unique_clicks, ints.format(s.unique_clicks), "per visitor and day"),
          card("ctr", "CTR", s.ctr, s.impressions ? (s.ctr * 100).toFixed(2) + "%" : "—", interval),
          card("flagged", "Scanner clicks", flaggedOf(s), ints.format(flaggedOf(s)), "left out"),
          card("conversions", "Conversions", s.conversions, ints.format(s.conversions), revenueOf(s.revenue)));
        const box = $("#chart-ctr");
        const width = Math.max(280, Math.min(1600, Math.round(box.clientWidth || 640)));
        await chart(box, "/api/v1/promo/chart.svg?width=" + width + "&height=" + (width < 480 ? 240 : 280) + "&" + q.toString());
        const heads = {};
        for (const v of a.variations || []) heads[v.variation_id] = v.headline;
        const counts = [
          { key: "impressions", label: "Recipients", num: true, fmt: (r) => ints.format(r.impressions) },
          { key: "clicks", label: "Clicks", num: true, fmt: (r) => ints.format(r.clicks) },
          { key: "unique_clicks", label: "Unique clicks", num: true, fmt: (r) => ints.format(r.unique_clicks) },
          { key: "ctr", label: "CTR (95 % interval)", num: true, fmt: ctrText },
          { key: "flagged", label: "Scanner clicks", num: true, fmt: (r) => ints.format(flaggedOf(r)), sortValue: flaggedOf },
          { key: "conversions", label: "Conversions", num: true, fmt: (r) => ints.format(r.conversions) },
          { key: "revenue", label: "Revenue", num: true, fmt: (r) => revenueOf(r.revenue), sortValue: (r) => Object.values(r.revenue || {}).reduce((x, y) => x + Number(y), 0) },
        ];
        table($("#promo-offers"), [
          { key: "name", label: "Offer", fmt: (r) => r.name || r.offer_id, asc: true },
          ...counts,
          { key: "best", label: "Best variation", fmt: (r) => (r.best_variation_id ? heads[r.best_variation_id] || r.best_variation_id : "—"), nosort: true },
        ], a.offers.map((o) => ({ ...o, id: o.offer_id })), { sortKey: "ctr", caption: "Offers", empty: "No offers with figures in this period." });
        const offerName = {};
        for (const o of a.offers) offerName[o.offer_id] = o.name;
        const verdict = (r) => {
          if (!r.impressions) return "not sent";
          if (!r.vs_leader) return "leader";
          const v = r.vs_leader;
          if (v.significant) return "behind (significant, p " + v.p_value.toFixed(3) + ")";
          return v.more_recipients_needed ? "not yet: " + ints.format(v.more_recipients_needed) + " more recipients" : "not yet (p " + v.p_value.toFixed(3) + ")";
        };
        table($("#promo-variations"), [
          { key: "headline", label: "Variation", fmt: (r) => r.headline + (r.approved ? "" : " (not approved)"), asc: true },
          { key: "offer", label: "Offer", fmt: (r) => offerName[r.offer_id] || r.offer_id, sortValue: (r) => offerName[r.offer_id] || "" },
          ...counts,
          { key: "probability_best", label: "Chance best", num: true, fmt: (r) => (r.probability_best === null || r.probability_best === undefined ? "—" : pct(r.probability_best)), sortValue: (r) => r.probability_best || 0 },
          { key: "verdict", label: "Against the leader", fmt: verdict, nosort: true },
        ], (a.variations || []).map((v) => ({ ...v, id: v.variation_id })), { sortKey: "ctr", caption: "Variations", empty: "No variations with figures in this period." });
        status("Updated " + new Date().toLocaleTimeString("en-GB", { timeZone: tz }) + ".");
      } catch (e) { status(e.message); }
    };
    $("#range").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    await load();
  }

  async function recentEvents(params) {
    const q = new URLSearchParams(params); q.delete("interval"); q.set("limit", "20");
    const rows = (await api("GET", "/api/v1/stats/recent-events?" + q.toString())).rows;
    table($("#recent-events"), [
      { key: "occurred_at", label: "When", fmt: (r) => date(r.occurred_at) },
      { key: "event_id", label: "Event id", fmt: (r) => el("button", { type: "button", class: "link", on: { click: () => audit(r.event_id) } }, r.event_id) },
      { key: "action", label: "Action" },
      { key: "value", label: "Value", num: true, fmt: (r) => (r.currency && r.value_minor !== undefined && r.value_minor !== null ? money(r.value_minor, r.currency) : "—"), sortValue: (r) => Number(r.value_minor || 0) },
      { key: "attributed_by", label: "Credited by", fmt: (r) => r.attributed_by || "not attributed" },
      { key: "influencer", label: "Influencer", fmt: (r) => r.influencer || "—" },
    ], rows.map((r) => ({ ...r, id: r.event_id })), { sortKey: "occurred_at", empty: "No events in this period." });
  }

  async function audit(id) {
    const d = $("#audit");
    $("#audit-body").replaceChildren(el("p", {}, "Loading…"));
    d.showModal();
    try {
      const a = await api("GET", "/api/v1/attribution/" + encodeURIComponent(id));
      const facts = el("dl", { class: "facts" },
        el("dt", {}, "Event"), el("dd", {}, a.event_id + " (" + a.action + ", " + date(a.occurred_at) + ")"),
        el("dt", {}, "Attributed"), el("dd", {}, a.attributed ? "yes, by " + a.attributed_by : "no"),
        el("dt", {}, "Influencer"), el("dd", {}, a.influencer_id || "—"),
        el("dt", {}, "Campaign"), el("dd", {}, a.campaign_id || "—"),
        el("dt", {}, "Rule"), el("dd", {}, a.reason || a.rule || "—"));
      $("#audit-body").replaceChildren(facts, el("details", {}, el("summary", {}, "Every candidate considered"), el("pre", {}, JSON.stringify(a.candidates, null, 2))));
    } catch (e) { $("#audit-body").replaceChildren(el("p", { class: "error" }, e.message)); }
  }

  async function myCampaigns() {
    const [links, coupons] = await Promise.all([api("GET", "/api/v1/me/links"), api("GET", "/api/v1/me/coupons")]);
    const byCampaign = new Map();
    const entry = (x) => { if (!byCampaign.has(x.campaign_id)) byCampaign.set(x.campaign_id, { name: x.campaign_name, live: x.campaign_live, links: [], coupons: [] }); return byCampaign.get(x.campaign_id); };
    links.forEach((l) => entry(l).links.push(l));
    coupons.forEach((c) => entry(c).coupons.push(c));
    const blocks = Array.from(byCampaign.values()).map((c) => el("div", { class: "campaign" },
      el("h3", {}, c.name + (c.live ? "" : " (not live)")),
      c.links.map((l) => el("div", { class: "copyable" }, el("span", { class: "muted" }, "Link"), el("code", {}, l.url), l.active ? copyButton(l.url, "Copy link " + l.code) : el("span", { class: "muted" }, "inactive"))),
      c.coupons.map((k) => el("div", { class: "copyable" }, el("span", { class: "muted" }, "Coupon"), el("code", {}, k.code), k.active ? copyButton(k.code, "Copy coupon " + k.code) : el("span", { class: "muted" }, "invalidated")))));
    $("#my-campaigns").replaceChildren(...(blocks.length ? blocks : [el("p", { class: "muted" }, "You are not assigned to a campaign yet.")]));
  }

  // ---------------------------------------------------------------- admin
  async function all(path) {
    const out = [];
    let cursor = null;
    for (let i = 0; i < 100; i++) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api("GET", path + sep + "limit=1000" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      out.push(...page.items);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    return out;
  }

  async function health() {
    try {
      const first = ymd(new Date()).slice(0, 8) + "01";
      const [advertisers, month, lag, dead, users, deliveries] = await Promise.all([
        all("/api/v1/admin/advertisers"),
        api("GET", "/api/v1/stats/overview?from=" + first + "&tz=" + encodeURIComponent(tz)),
        api("GET", "/api/v1/admin/pipeline"),
        api("GET", "/api/v1/admin/dead-letter?limit=20"),
        all("/api/v1/admin/users"),
        api("GET", "/api/v1/deliveries?limit=20"),
      ]);
      const events = ["add_to_carts", "purchases", "signups", "drop_offs", "custom_events"].reduce((s, k) => s + month[k], 0);
      const active = advertisers.filter((a) => a.status === "active").length;
      $("#health").replaceChildren(
        scorecard("active_advertisers", "Active advertisers", active, ints.format(active), null),
        scorecard("events_this_month", "Events this month", events, ints.format(events), null),
        scorecard("clicks_this_month", "Clicks this month", month.clicks, ints.format(month.clicks), null),
        scorecard("processor_lag", "Processor lag (records)", lag.lag, ints.format(lag.lag), null),
        scorecard("users", "Users", users.length, ints.format(users.length), null));
      const parts = [];
      for (const [topic, list] of Object.entries(lag.topics)) for (const p of list) parts.push({ id: topic + "/" + p.partition, topic, ...p });
      table($("#lag"), [
        { key: "topic", label: "Topic", asc: true }, { key: "partition", label: "Partition", num: true },
        { key: "end_offset", label: "End offset", num: true }, { key: "committed", label: "Committed", num: true },
        { key: "lag", label: "Lag", num: true }], parts, { sortKey: "lag", empty: "No partitions." });
      table($("#dead-letter"), [
        { key: "at", label: "When", fmt: (r) => date(r.at) }, { key: "reason", label: "Reason" },
        { key: "detail", label: "Detail" }, { key: "source_topic", label: "Topic" }],
        dead.map((d, i) => ({ ...d, id: "dl" + i })), { sortKey: "at", empty: "No failed ingestions." });
      const advName = new Map(advertisers.map((a) => [a.id, a.name]));
      const replay = (r) => el("button", { type: "button", class: "small", "aria-label": "Replay delivery " + r.delivery_id, on: { click: async (ev) => {
        try { await api("POST", "/api/v1/deliveries/" + encodeURIComponent(r.delivery_id) + "/replay"); ev.target.textContent = "Queued"; ev.target.disabled = true; }
        catch (e) { status(e.message); }
      } } }, "Replay");
      table($("#deliveries"), [
        { key: "at", label: "When", fmt: (r) => date(r.at) },
        { key: "advertiser_id", label: "Advertiser", fmt: (r) => advName.get(r.advertiser_id) || r.advertiser_id },
        { key: "event", label: "Event" }, { key: "target_kind", label: "To", fmt: (r) => r.target_kind + " " + r.target_id },
        { key: "attempt", label: "Attempt", num: true }, { key: "status", label: "Status", num: true },
        { key: "outcome", label: "Outcome" },
        { key: "response", label: "Last response", fmt: (r) => r.error || r.response || "—" },
        { key: "replay", label: "Replay", nosort: true, fmt: replay }],
        deliveries.rows.map((d) => ({ ...d, id: d.delivery_id + "/" + d.attempt })), { sortKey: "at", empty: "No deliveries yet." });
      table($("#signups"), [
        { key: "created_at", label: "Invited", fmt: (r) => date(r.created_at) }, { key: "name", label: "Name" },
        { key: "email", label: "Email" }, { key: "role", label: "Role" },
        { key: "has_password", label: "Signed up", fmt: (r) => (r.has_password ? "yes" : "invitation pending") }],
        users.slice().sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, 10), { sortKey: "created_at", empty: "No users yet." });
      status("");
    } catch (e) { status(e.message); }
  }

  const names = { advertisers: new Map(), campaigns: new Map(), influencers: new Map(), links: new Map() };
  async function loadPickers() {
    const [a, c, i] = await Promise.all([all("/api/v1/admin/advertisers"), all("/api/v1/admin/campaigns"), all("/api/v1/admin/influencers")]);
    a.forEach((x) => names.advertisers.set(x.id, x.name));
    c.forEach((x) => names.campaigns.set(x.id, x.name));
    i.forEach((x) => names.influencers.set(x.id, x.name));
    const fill = (cls, items) => $$(cls).forEach((s) => {
      const keep = s.value;
      const opts = items.map((x) => el("option", { value: x.id }, x.name + (x.status === "inactive" ? " (inactive)" : "")));
      s.replaceChildren(...(s.dataset.empty ? [el("option", { value: "" }, s.dataset.empty)] : []), ...opts);
      if (keep) s.value = keep;
    });
    fill(".pick-advertiser", a); fill(".pick-campaign", c); fill(".pick-influencer", i);
    if ($(".pick-link") || $(".pick-offer")) {
      const [l, o] = await Promise.all([all("/api/v1/admin/links"), all("/api/v1/admin/offers")]);
      l.forEach((x) => names.links.set(x.id, "/r/" + x.code));
      fill(".pick-link", l.filter((x) => x.active).map((x) => ({ id: x.id, name: "/r/" + x.code + " (" + nameOf("campaigns", x.campaign_id) + ", " + nameOf("influencers", x.influencer_id) + ")" })));
      fill(".pick-offer", o.map((x) => ({ id: x.id, name: x.name + (x.active ? "" : " (inactive)") })));
    }
  }

  /** Every variation of every offer, with approve and withdraw. */
  async function variationsList() {
    const offers = await all("/api/v1/admin/offers");
    const rows = (await Promise.all(offers.map((o) => api("GET", "/api/v1/admin/offers/" + o.id))))
      .flatMap((o) => o.variations.map((v) => ({ ...v, offer: o.name })));
    table($("#variations"), [
      { key: "headline", label: "Headline", asc: true }, { key: "offer", label: "Offer" }, { key: "cta", label: "Call to action" },
      { key: "tone", label: "Tone" }, { key: "approved", label: "Approved", fmt: (r) => (r.approved ? "yes" : "no") },
      { key: "actions", label: "Actions", nosort: true, fmt: (r) => action(r.approved ? "Withdraw" : "Approve", async () => {
        await api("PATCH", "/api/v1/admin/variations/" + r.id, { approved: !r.approved }); await variationsList(); }) }],
    rows, { sortKey: "headline", empty: "No variations yet." });
  }
  const nameOf = (kind, id) => (id ? names[kind].get(id) || id : "—");

  function showSecret(text) {
    $("#secret-text").textContent = text;
    $("#secret-box").hidden = false;
    $("#secret-box").scrollIntoView({ block: "nearest" });
  }
  const action = (label, f) => el("button", { type: "button", class: "small", on: { click: async () => {
    $("#form-error").textContent = "";
    try { await f(); await manageList(); } catch (e) { fail("#form-error", e); }
  } } }, label);
  const toggleStatus = (path, r) => action(r.status === "active" ? "Deactivate" : "Activate",
    () => api("PATCH", path, { status: r.status === "active" ? "inactive" : "active" }));

  const sections = {
    advertisers: {
      list: () => all("/api/v1/admin/advertisers"),
      cols: [{ key: "name", label: "Name", asc: true }, { key: "id", label: "Id" }, { key: "status", label: "Status" },
        { key: "require_signature", label: "Signed requests", fmt: (r) => (r.require_signature ? "required" : "optional") },
        { key: "created_at", label: "Created", fmt: (r) => date(r.created_at) }],
      actions: (r) => [toggleStatus("/api/v1/admin/advertisers/" + r.id, r)],
      create: (f) => api("POST", "/api/v1/admin/advertisers", { name: f.elements.name.value, require_signature: f.elements.require_signature.checked }),
    },
    keys: {
      list: async () => { const a = $("#f-advertiser").value; return a ? all("/api/v1/admin/advertisers/" + a + "/api-keys") : []; },
      cols: [{ key: "prefix", label: "Key" }, { key: "created_at", label: "Created", fmt: (r) => date(r.created_at) },
        { key: "revoked_at", label: "Revoked", fmt: (r) => (r.revoked_at ? date(r.revoked_at) : "live") }],
      actions: (r) => (r.revoked_at ? [] : [
        action("Rotate", async () => { const k = await api("POST", "/api/v1/admin/api-keys/" + r.id + "/rotate"); showSecret("API key: " + k.key + "\nSigning secret: " + k.signing_secret); }),
        action("Revoke", () => api("DELETE", "/api/v1/admin/api-keys/" + r.id))]),
      create: async (f) => { const k = await api("POST", "/api/v1/admin/advertisers/" + f.elements.advertiser_id.value + "/api-keys"); showSecret("API key: " + k.key + "\nSigning secret: " + k.signing_secret); },
    },
    campaigns: {
      list: () => all("/api/v1/admin/campaigns"),
      cols: [{ key: "name", label: "Name", asc: true }, { key: "advertiser_id", label: "Advertiser", fmt: (r) => nameOf("advertisers", r.advertiser_id) },
        { key: "starts_at", label: "Starts", fmt: (r) => date(r.starts_at) }, { key: "ends_at", label: "Ends", fmt: (r) => date(r.ends_at) },
        { key: "attribution_window_secs", label: "Window", num: true, fmt: (r) => Math.round(r.attribution_window_secs / 86400) + " days" },
        { key: "attribution_source", label: "Source" }, { key: "status", label: "Status" }],
      actions: (r) => [toggleStatus("/api/v1/admin/campaigns/" + r.id, r), el("button", { type: "button", class: "small", on: { click: () => editCampaign(r) } }, "Edit")],
      create: async (f) => {
        const when = (v) => (v ? new Date(v).toISOString() : null);
        const body = { name: f.elements.name.value, destination_url: f.elements.destination_url.value,
          starts_at: when(f.elements.starts_at.value), ends_at: when(f.elements.ends_at.value),
          attribution_window_secs: Math.round(Number(f.elements.window_days.value) * 86400),
          attribution_source: f.elements.attribution_source.value };
        const editing = f.dataset.editing;
        if (editing) {
          await api("PATCH", "/api/v1/admin/campaigns/" + editing, body);
          delete f.dataset.editing;
          $("h2", f).textContent = "New campaign";
          $("button[type=submit]", f).textContent = "Create campaign";
          f.elements.advertiser_id.disabled = false;
          return;
        }
        if (!body.starts_at) delete body.starts_at;
        if (!body.ends_at) delete body.ends_at;
        await api("POST", "/api/v1/admin/advertisers/" + f.elements.advertiser_id.value + "/campaigns", body);
      },
    },
    influencers: {
      list: () => all("/api/v1/admin/influencers"),
      cols: [{ key: "name", label: "Name", asc: true }, { key: "email", label: "Email" }, { key: "status", label: "Status" },
        { key: "created_at", label: "Created", fmt: (r) => date(r.created_at) }],
      actions: (r) => [toggleStatus("/api/v1/admin/influencers/" + r.id, r)],
      create: (f) => api("POST", "/api/v1/admin/influencers", { name: f.elements.name.value, email: f.elements.email.value || undefined }),
    },
    links: {
      list: () => all("/api/v1/admin/links"),
      cols: [{ key: "code", label: "Code", asc: true }, { key: "url", label: "URL", fmt: (r) => el("span", { class: "copyable" }, el("code", {}, r.url), copyButton(r.url, "Copy " + r.code)) },
        { key: "campaign_id", label: "Campaign", fmt: (r) => nameOf("campaigns", r.campaign_id) },
        { key: "influencer_id", label: "Influencer", fmt: (r) => nameOf("influencers", r.influencer_id) },
        { key: "active", label: "Active", fmt: (r) => (r.active ? "yes" : "no") }],
      actions: (r) => (r.active ? [action("Regenerate", () => api("POST", "/api/v1/admin/links/" + r.id + "/regenerate")),
        action("Deactivate", () => api("POST", "/api/v1/admin/links/" + r.id + "/deactivate"))] : []),
      create: (f) => api("POST", "/api/v1/admin/links", { campaign_id: f.elements.campaign_id.value, influencer_id: f.elements.influencer_id.value, code: f.elements.code.value || undefined }),
    },
    coupons: {
      list: () => all("/api/v1/admin/coupons"),
      cols: [{ key: "code", label: "Code", asc: true }, { key: "campaign_id", label: "Campaign", fmt: (r) => nameOf("campaigns", r.campaign_id) },
        { key: "influencer_id", label: "Influencer", fmt: (r) => (r.influencer_id ? nameOf("influencers", r.influencer_id) : "generic") },
        { key: "active", label: "Active", fmt: (r) => (r.active ? "yes" : "no") }],
      actions: (r) => (r.active ? [action("Regenerate", () => api("POST", "/api/v1/admin/coupons/" + r.id + "/regenerate")),
        action("Invalidate", () => api("POST", "/api/v1/admin/coupons/" + r.id + "/invalidate"))] : []),
      create: (f) => {
        const body = { influencer_id: f.elements.influencer_id.value || undefined };
        if (f.elements.code.value) body.code = f.elements.code.value; else body.count = Number(f.elements.count.value || 1);
        return api("POST", "/api/v1/admin/campaigns/" + f.elements.campaign_id.value + "/coupons", body);
      },
    },
    offers: {
      list: () => all("/api/v1/admin/offers"),
      cols: [{ key: "name", label: "Name", asc: true }, { key: "advertiser_id", label: "Advertiser", fmt: (r) => nameOf("advertisers", r.advertiser_id) },
        { key: "link_id", label: "Link", fmt: (r) => nameOf("links", r.link_id) }, { key: "weight", label: "Weight", num: true },
        { key: "active", label: "Active", fmt: (r) => (r.active ? "yes" : "no") }],
      actions: (r) => [action(r.active ? "Deactivate" : "Activate", () => api("PATCH", "/api/v1/admin/offers/" + r.id, { active: !r.active }))],
      create: (f) => api("POST", "/api/v1/admin/offers", { link_id: f.elements.link_id.value, name: f.elements.name.value, weight: Number(f.elements.weight.value) }),
    },
    users: {
      list: () => all("/api/v1/admin/users"),
      cols: [{ key: "name", label: "Name", asc: true }, { key: "email", label: "Email" }, { key: "role", label: "Role" },
        { key: "binding", label: "Of", fmt: (r) => (r.advertiser_id ? nameOf("advertisers", r.advertiser_id) : r.influencer_id ? nameOf("influencers", r.influencer_id) : "—") },
        { key: "status", label: "Status", fmt: (r) => (r.status === "active" ? "active" : "disabled") },
        { key: "has_password", label: "Password", fmt: (r) => (r.has_password ? "set" : "invitation pending") }],
      actions: (r) => [
        action("Reset password", async () => { const i = await api("POST", "/api/v1/admin/users/" + r.id + "/reset"); showSecret("Set-password link for " + r.email + ":\n" + i.set_password_url); }),
        action(r.status === "active" ? "Disable" : "Enable", () => api("PATCH", "/api/v1/admin/users/" + r.id, { status: r.status === "active" ? "inactive" : "active" })),
        el("button", { type: "button", class: "small", on: { click: () => editUser(r) } }, "Edit")],
      create: async (f) => {
        const role = f.elements.role.value;
        if (f.dataset.editing) {
          await api("PATCH", "/api/v1/admin/users/" + f.dataset.editing, { email: f.elements.email.value, name: f.elements.name.value || undefined, role,
            advertiser_id: role === "advertiser" ? f.elements.advertiser_id.value || undefined : undefined,
            influencer_id: role === "influencer" ? f.elements.influencer_id.value || undefined : undefined });
          delete f.dataset.editing;
          $("h2", f).textContent = "Invite a user";
          $("button[type=submit]", f).textContent = "Invite";
          return;
        }
        const i = await api("POST", "/api/v1/admin/users", { email: f.elements.email.value, name: f.elements.name.value || undefined, role,
          advertiser_id: role === "advertiser" ? f.elements.advertiser_id.value || undefined : undefined,
          influencer_id: role === "influencer" ? f.elements.influencer_id.value || undefined : undefined });
        showSecret("Set-password link for " + i.user.email + " (works once, until " + date(i.expires_at) + "):\n" + i.set_password_url);
      },
    },
  };

  /** Loads a campaign into the form to change its dates, window and attribution source. */
  function editCampaign(r) {
    const f = $("#create-form");
    const local = (iso) => {
      if (!iso) return "";
      const d = new Date(iso);
      return ymd(d) + "T" + String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    };
    f.dataset.editing = r.id;
    f.elements.advertiser_id.value = r.advertiser_id;
    f.elements.advertiser_id.disabled = true;
    f.elements.name.value = r.name;
    f.elements.destination_url.value = r.destination_url;
    f.elements.starts_at.value = local(r.starts_at);
    f.elements.ends_at.value = local(r.ends_at);
    f.elements.window_days.value = String(Math.round(r.attribution_window_secs / 86400));
    f.elements.attribution_source.value = r.attribution_source;
    $("h2", f).textContent = "Change campaign " + r.name;
    $("button[type=submit]", f).textContent = "Save campaign";
    f.scrollIntoView({ block: "start" });
    f.elements.name.focus();
  }

  /** Loads a user into the form to change their name, email, role and binding. */
  function editUser(r) {
    const f = $("#create-form");
    f.dataset.editing = r.id;
    f.elements.email.value = r.email;
    f.elements.name.value = r.name;
    f.elements.role.value = r.role;
    f.elements.advertiser_id.value = r.advertiser_id || "";
    f.elements.influencer_id.value = r.influencer_id || "";
    $("h2", f).textContent = "Change user " + r.email;
    $("button[type=submit]", f).textContent = "Save user";
    f.scrollIntoView({ block: "start" });
    f.elements.email.focus();
  }

  async function manageList() {
    const list = $("#list");
    const s = sections[list.dataset.section];
    const rows = await s.list();
    table(list, [...s.cols, { key: "actions", label: "Actions", nosort: true, fmt: (r) => el("span", {}, s.actions(r)) }], rows,
      { sortKey: s.cols[0].key, empty: "None yet." });
  }

  async function manage() {
    const section = $("#list").dataset.section;
    const s = sections[section];
    try { await loadPickers(); await manageList(); } catch (e) { status(e.message); }
    const form = $("#create-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("#form-error").textContent = "";
      try { await s.create(form); form.reset(); await loadPickers(); await manageList(); status("Saved."); }
      catch (e) { fail("#form-error", e); }
    });
    if (section === "keys") $("#f-advertiser").addEventListener("change", () => manageList().catch((e) => status(e.message)));
    const variation = $("#variation-form");
    if (variation) {
      variationsList().catch((e) => status(e.message));
      variation.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        $("#form-error").textContent = "";
        const f = variation.elements;
        try {
          await api("POST", "/api/v1/admin/offers/" + f.offer_id.value + "/variations", { headline: f.headline.value, body: f.body.value,
            cta: f.cta.value, tone: f.tone.value, approved: f.approved.checked });
          variation.reset(); await loadPickers(); await variationsList(); status("Saved.");
        } catch (e) { fail("#form-error", e); }
      });
    }
    const assign = $("#assign-form");
    if (assign) {
      const show = async () => {
        const id = $("#a-campaign").value;
        if (!id) return;
        const rows = await all("/api/v1/admin/campaigns/" + id + "/influencers");
        table($("#assignments"), [{ key: "name", label: "Assigned influencer", asc: true },
          { key: "actions", label: "Actions", nosort: true, fmt: (r) => action("Unassign", () => api("DELETE", "/api/v1/admin/campaigns/" + id + "/influencers/" + r.id).then(show)) }],
        rows, { sortKey: "name", empty: "Nobody is assigned to this campaign." });
      };
      $("#a-campaign").addEventListener("change", () => show().catch((e) => status(e.message)));
      assign.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try { await api("POST", "/api/v1/admin/campaigns/" + $("#a-campaign").value + "/influencers", { influencer_id: $("#a-influencer").value }); await show(); status("Assigned."); }
        catch (e) { fail("#form-error", e); }
      });
      show().catch((e) => status(e.message));
    }
    const copy = $("#secret-copy");
    if (copy) copy.addEventListener("click", async () => { try { await navigator.clipboard.writeText($("#secret-text").textContent); copy.textContent = "Copied"; } catch (_) { copy.textContent = "Select and copy"; } });
  }

  // ---------------------------------------------------------------- accounts
  /** Where to go after logging in: `next` only when it is a path of this site. */
  function next() {
    const n = new URLSearchParams(location.search).get("next") || "/";
    try {
      const u = new URL(n, location.origin);
      const path = u.pathname + u.search;
      // Checked after normalising too: `/.//host` becomes `//host`.
      if (u.origin === location.origin && /^\/[^/\\]/.test(n) && /^\/(?![/\\])/.test(path)) return path;
    } catch (_) { /* not a URL */ }
    return "/";
  }
  function login() {
    $("#login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("#login-error").textContent = "";
      try { await api("POST", "/api/v1/auth/login", { email: $("#email").value, password: $("#password").value }); location.assign(next()); }
      catch (e) { fail("#login-error", e); }
    });
  }
  function setPassword() {
    const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
    if (!token) $("#set-password-error").textContent = "This page needs the link an admin gave you.";
    $("#set-password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const pw = $("#new-password").value;
      if (pw !== $("#repeat-password").value) { $("#set-password-error").textContent = "The two passwords differ."; return; }
      try { await api("POST", "/api/v1/auth/set-password", { token, password: pw }); history.replaceState(null, "", "/set-password"); location.assign("/"); }
      catch (e) { fail("#set-password-error", e); }
    });
  }
  function account() {
    $("#password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("#password-error").textContent = "";
      try { await api("POST", "/api/v1/me/password", { current_password: $("#current-password").value, new_password: $("#new-password").value }); ev.target.reset(); status("Password changed."); }
      catch (e) { fail("#password-error", e); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const out = $("#logout");
    if (out) out.addEventListener("click", async () => { try { await api("POST", "/api/v1/auth/logout"); } catch (_) { /* the cookies go anyway */ } location.assign("/login"); });
    const page = document.body.dataset.page;
    const run = { login, "set-password": setPassword, account, dashboard: () => dashboard(false), my: () => dashboard(true), promos, admin: health, manage }[page];
    if (run) Promise.resolve(run()).catch((e) => status(e.message));
  });
})();
