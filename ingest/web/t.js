/* clicktrail browser tracker. Usage and options: docs/integration.md.
   <script src="https://TRACKER/t.js" data-key="pk_..." async></script>
   Options (attributes of the script tag): data-key (publishable key, required),
   data-cookie="true" (also keep the ids in a first-party cookie), data-cookie-days (default 30),
   data-debug="true" (one console warning when tracking data is missing or a send is refused). */
(function (w, d) {
  "use strict";
  var prior = w.clicktrail;
  if (prior && prior.loaded) return;
  var CLICK = ["click_id", "clickid", "ct_click_id"];
  var REF = ["ref_code", "ref", "aff", "affiliate", "aff_id", "via"];
  var SUB = ["sub_id", "subid"];
  var ACTIONS = { add_to_cart: 1, purchase: 1, signup: 1, drop_off: 1 };
  var NAME = "clicktrail";
  var script = d.currentScript;
  if (!script) {
    var tagged = d.querySelectorAll("script[data-key]");
    script = tagged[tagged.length - 1];
  }
  function attr(n) { return (script && script.getAttribute(n)) || ""; }
  var key = attr("data-key");
  var debug = attr("data-debug") === "true";
  var cookie = attr("data-cookie") === "true";
  var days = parseInt(attr("data-cookie-days"), 10) || 30;
  var endpoint = "";
  try { endpoint = new URL(script.src, w.location.href).origin + "/api/v1/browser/events"; } catch (e) { endpoint = ""; }
  var warned = false;
  function warn(message) {
    if (!debug || warned) return;
    warned = true;
    try { w.console.warn("clicktrail: " + message); } catch (e) { /* no console */ }
  }
  function pick(params, names) {
    for (var i = 0; i < names.length; i++) {
      var found = null;
      params.forEach(function (v, k) {
        if (found === null && k.toLowerCase() === names[i] && v.trim() !== "") found = v.trim();
      });
      if (found !== null) return found;
    }
    return null;
  }
  function readCookie() {
    var parts = (d.cookie || "").split("; ");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(NAME + "=") === 0) {
        try { return JSON.parse(decodeURIComponent(parts[i].slice(NAME.length + 1))); } catch (e) { return null; }
      }
    }
    return null;
  }
  function load() {
    try {
      var kept = w.sessionStorage.getItem(NAME);
      if (kept) return JSON.parse(kept);
    } catch (e) { /* storage blocked */ }
    return cookie ? readCookie() : null;
  }
  function save(ids) {
    var text = JSON.stringify(ids);
    try { w.sessionStorage.setItem(NAME, text); } catch (e) { /* storage blocked */ }
    if (cookie) {
      try {
        d.cookie = NAME + "=" + encodeURIComponent(text) + "; max-age=" + days * 86400 +
          "; path=/; SameSite=Lax" + (w.location.protocol === "https:" ? "; Secure" : "");
      } catch (e) { /* cookies blocked */ }
    }
  }
  var ids = null;
  try {
    var params = new URL(w.location.href).searchParams;
    var click = pick(params, CLICK);
    var ref = pick(params, REF);
    if (click || ref) {
      ids = { click_id: click, ref_code: ref, sub_id: pick(params, SUB), landing_url: w.location.href };
      save(ids);
    } else {
      ids = load();
    }
  } catch (e) { ids = null; }
  if (!key) warn("no data-key on the script tag: events are not sent");
  function uid() {
    try { if (w.crypto && w.crypto.randomUUID) return "bt_" + w.crypto.randomUUID(); } catch (e) { /* fall through */ }
    return "bt_" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  var FIELDS = ["event_id", "value", "currency", "order_id", "customer_id", "coupon_code"];
  function build(action, props) {
    props = props || {};
    var ev = { occurred_at: new Date().toISOString() };
    if (ACTIONS[action]) { ev.action = action; } else { ev.action = "custom"; ev.name = String(action); }
    var extra = {};
    for (var k in props) {
      if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
      if (FIELDS.indexOf(k) >= 0) ev[k] = props[k]; else extra[k] = props[k];
    }
    if (!ev.event_id) ev.event_id = uid();
    for (var x in extra) { if (Object.prototype.hasOwnProperty.call(extra, x)) { ev.properties = extra; break; } }
    if (ids && ids.click_id) ev.click_id = ids.click_id;
    if (ids && ids.ref_code) ev.ref_code = ids.ref_code;
    if (ids && ids.sub_id) ev.sub_id = ids.sub_id;
    if (ids && ids.landing_url) ev.landing_url = ids.landing_url;
    if (d.referrer) ev.referrer = d.referrer;
    if (!ids || !(ids.click_id || ids.ref_code)) warn("no click_id or ref_code kept for this visit: " + action + " is sent unattributed");
    return ev;
  }
  function track(action, props) {
    try {
      if (!key || !endpoint) { warn("not configured: " + action + " was not sent"); return Promise.resolve({ ok: false, status: 0 }); }
      if (action === "refund") { warn("refunds are sent from a backend with an API key, not from a page"); return Promise.resolve({ ok: false, status: 0 }); }
      var body = JSON.stringify(build(action, props));
      var url = endpoint + "?key=" + encodeURIComponent(key);
      if (!w.fetch) {
        var queued = w.navigator.sendBeacon && w.navigator.sendBeacon(url, body);
        return Promise.resolve({ ok: !!queued, status: 0 });
      }
      return w.fetch(url, {
        method: "POST", mode: "cors", credentials: "omit", keepalive: true,
        headers: { "Content-Type": "text/plain" }, body: body
      }).then(function (res) {
        return res.json().catch(function () { return null; }).then(function (answer) {
          if (!res.ok) warn(action + " refused (" + res.status + "): " + (answer && answer.message));
          return { ok: res.ok, status: res.status, body: answer };
        });
      }, function (err) {
        warn(action + " not sent: " + err);
        return { ok: false, status: 0 };
      });
    } catch (e) {
      warn(action + " not sent: " + e);
      return Promise.resolve({ ok: false, status: 0 });
    }
  }
  var api = {
    loaded: true,
    track: track,
    purchase: function (props) { return track("purchase", props); },
    signup: function (props) { return track("signup", props); },
    ids: function () { return ids ? { click_id: ids.click_id || null, ref_code: ids.ref_code || null } : { click_id: null, ref_code: null }; }
  };
  w.clicktrail = api;
  if (prior && prior.q && prior.q.length) {
    for (var i = 0; i < prior.q.length; i++) {
      try { var call = prior.q[i]; api[call[0]].apply(null, call[1] || []); } catch (e) { warn("a queued call failed: " + e); }
    }
  }
})(window, document);
