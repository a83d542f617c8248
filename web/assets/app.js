// pikcio status page: polls /api/status and redraws the page from it.
// No framework, no inline code (the page's CSP forbids it).
"use strict";
(function () {
  var meta = function (n) { var m = document.querySelector('meta[name="' + n + '"]'); return m ? m.content : ""; };
  var token = meta("pikcio-csrf");
  var poll = parseInt(meta("pikcio-poll-ms"), 10) || 2000;
  var $ = function (id) { return document.getElementById(id); };

  // h builds an element: h("td", {class: "x"}, "text", child...). Text is
  // always set as text, never parsed as HTML.
  function h(tag, attrs) {
    var svg = tag === "svg" || tag === "polyline" || tag === "line";
    var el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (var k in attrs || {}) {
      if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) continue;
      el.setAttribute(k, attrs[k] === true ? "" : String(attrs[k]));
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  function set(id, text) { var el = $(id); if (el) el.textContent = text; }
  function replace(id, el) { var old = $(id); if (old) old.replaceWith(el); else return false; return true; }

  function bytes(n) {
    if (n < 1024) return n + " B";
    var u = "KMGTPE", i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + " " + u[i] + "iB";
  }
  function dur(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor(s / 60) % 60 + " min";
    return Math.floor(s / 86400) + " d " + Math.floor(s / 3600) % 24 + " h";
  }
  function short(id) { return id.length <= 8 ? id : id.slice(-8); }
  function band(b) { return b ? "TCI " + b.min + "–" + b.max : "no TCI"; }
  function zero(t) { return !t || t.indexOf("0001-01-01") === 0; }
  function expiry(t, now) {
    if (zero(t)) return "—";
    var d = new Date(t), iso = d.toISOString();
    var date = iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC";
    return d < now ? date + " (expired " + dur((now - d) / 1000) + " ago)" : date + " (in " + dur((d - now) / 1000) + ")";
  }
  function idChip(id) {
    return [h("code", {class: "id", title: id}, short(id)), h("button", {type: "button", class: "copy", "data-copy": id}, "Copy")];
  }
  function dl(rows) {
    return h("dl", null, rows.filter(Boolean).map(function (r) { return [h("dt", null, r[0]), h("dd", null, r[1])]; }));
  }
  function state(ok, yes, no) { return h("span", {class: ok ? "ok" : "wait"}, ok ? yes : no); }

  function tokens(t) {
    return [t.held + " for " + t.guards + " guards, " +
      (t.remaining < 0 ? "allowance not known yet" : t.remaining + " more this period") +
      (t.refilling ? ", refilling" : ""),
      t.last_error ? [" ", h("span", {class: "wait"}, t.last_error)] : null];
  }

  function nodeSection(s, now) {
    var id = s.identity, rows = [
      ["Peer ID", idChip(s.peer_id)],
      ["Addresses", (s.addrs || []).length ? s.addrs.map(function (a) { return [h("code", {class: "addr"}, a), " "]; }) : "none"]
    ];
    if (!id) rows.push(["Enrollment", "no TIS configured"]);
    else rows.push(
      ["Enrollment", state(id.enrolled, "enrolled", "not enrolled")],
      id.node_id && ["Node ID", idChip(id.node_id)],
      id.matryoshka_id && ["Matryoshka ID", idChip(id.matryoshka_id)],
      ["Node certificate", expiry(id.node_cert_expires, now)],
      ["Matryoshka certificate", expiry(id.matryoshka_cert_expires, now)],
      ["Your TCI", id.score === null || id.score === undefined ? "not computed yet" : String(id.score)],
      ["Contacts", String(id.contacts)],
      id.tokens && ["Admission tokens", tokens(id.tokens)]);
    return h("section", {id: "node"}, h("h2", null, "This node"), dl(rows));
  }

  function networkSection(s) {
    var n = s.network;
    return h("section", {id: "network"}, h("h2", null, "Network"), dl([
      ["Relays known", [h("span", {id: "relays-known"}, n.relays_known), ", of which ", h("span", {id: "exits-known"}, n.exits_known), " exits"]],
      ["Entry guards", String(n.guards)],
      ["DHT", (s.joined ? "joined" : "joining") + ", " + n.dht_peers + " peers in the routing table"],
      ["Trust view", n.trust_identities + " identities"]
    ]));
  }

  function hop(p) {
    var tci = p.tci ? p.tci.min + "-" + p.tci.max : "none";
    return h("li", {class: "hop role-" + p.role, "data-hop": p.id, "data-role": p.role, "data-tci": tci,
      "data-contact": p.contact || null, title: p.peer_id},
      p.role + " · ", h("code", null, short(p.id)), " · " + band(p.tci) + (p.contact ? " · " + p.contact : ""));
  }

  function circuit(c) {
    return h("table", {class: "circuit", "data-circuit": c.id},
      h("caption", null, "Circuit " + c.id + " ", h("span", {class: "state"}, c.state), " ",
        h("span", {class: "group"}, c.group ? "isolation group " + c.group : "prebuilt")),
      h("thead", null, h("tr", null, ["Path", "Age", "Up", "Down", "Streams"].map(function (t) { return h("th", null, t); }))),
      h("tbody", null, h("tr", null,
        h("td", null, h("ol", {class: "hops"}, (c.hops || []).map(hop))),
        h("td", null, dur(c.age_seconds)), h("td", null, bytes(c.bytes_up)), h("td", null, bytes(c.bytes_down)),
        h("td", null, c.streams + " open, " + c.streams_opened + " opened"))));
  }

  function updateClient(c) {
    if (!c || !$("client")) return; // the role set changed: the reload below brings the sections
    var p = c.pool, rows = $("client").querySelector("dl");
    rows.replaceWith(dl([
      ["SOCKS5 proxy", c.socks ? [h("code", null, c.socks), " · ", h("a", {href: "/proxy.pac"}, "proxy.pac")] : "off"],
      ["HTTP proxy", c.http ? h("code", null, c.http) : "off"],
      ["State", [state(c.ready, "ready", "building the first circuit"), ", " + c.hops + " hops per circuit, build timeout " + c.build_timeout_seconds.toFixed(1) + " s"]],
      ["Pool", p.circuits + " circuits (" + p.clean + " unused, " + p.retired + " retired, " + p.building + " building), " +
        p.streams + " streams, " + p.groups + " isolation groups; " + p.builds + " built, " + p.build_failures + " failed"]
    ]));
    var list = c.circuits || [];
    replace("circuits", h("div", {id: "circuits"}, list.length ? list.map(circuit) : h("p", {class: "empty"}, "No circuit open.")));
  }

  function updateRelay(r) {
    if (!r || !$("relay")) return;
    var rows = [
      ["Circuits", r.circuits + " relayed now, " + r.circuits_total + " since start"],
      ["Relayed", bytes(r.bytes)],
      ["TCI band", band(r.tci)]
    ];
    if (r.exit) rows.push(["Exit policy", (r.exit_policy || []).length ? r.exit_policy.map(function (x) { return [h("code", null, x), " "]; }) : "default"]);
    $("relay").querySelector("dl").replaceWith(dl(rows));
  }

  // graph draws the same geometry as render.go: 600x120, newest sample at
  // the right edge, five minutes wide.
  function graph(samples) {
    var W = 600, H = 120, win = 300, peak = 1, up = [], down = [];
    samples.forEach(function (s) { peak = Math.max(peak, s.up, s.down); });
    var last = samples.length ? samples[samples.length - 1] : null;
    samples.forEach(function (s) {
      var x = W - (last.t - s.t) / win * W;
      if (x < 0) return;
      var y = function (v) { return (H - 2 - v / peak * (H - 4)).toFixed(1); };
      up.push(x.toFixed(1) + "," + y(s.up));
      down.push(x.toFixed(1) + "," + y(s.down));
    });
    replace("graph", h("svg", {class: "graph", id: "graph", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "throughput over the last minutes"},
      h("line", {class: "axis", x1: 0, y1: H, x2: W, y2: H}),
      h("polyline", {class: "down", points: down.join(" ")}),
      h("polyline", {class: "up", points: up.join(" ")})));
    set("rate-up", bytes(last ? last.up : 0) + "/s");
    set("rate-down", bytes(last ? last.down : 0) + "/s");
    set("rate-peak", bytes(peak > 1 ? peak : 0) + "/s");
  }

  function errors(list, dest, now) {
    var head = ["When", "Kind", "Error"].concat(dest ? ["Destination"] : []);
    replace("error-list", h("div", {id: "error-list"}, list.length ? h("table", {class: "errors"},
      h("thead", null, h("tr", null, head.map(function (t) { return h("th", null, t); }))),
      h("tbody", null, list.map(function (e) {
        return h("tr", null, h("td", {title: e.time}, dur((now - new Date(e.time)) / 1000) + " ago"),
          h("td", null, e.kind), h("td", null, e.message), dest ? h("td", null, h("code", null, e.destination || "")) : null);
      }))) : h("p", {class: "empty"}, "No recent errors.")));
  }

  function sections(s) { return [!!s.client, !!s.relay].join(); }
  var shown = null, timer = null;

  function render(s, dest) {
    if (shown !== null && shown !== sections(s)) { location.reload(); return; }
    shown = sections(s);
    var now = new Date(s.generated);
    set("roles", (s.roles || []).join(" + "));
    set("version", s.version);
    set("uptime", dur(s.uptime_seconds));
    var joined = state(s.joined, "joined", "joining the network");
    joined.id = "joined";
    replace("joined", joined);
    set("updated", "live, as of " + now.toISOString().slice(11, 19) + " UTC");
    replace("node", nodeSection(s, now));
    replace("network", networkSection(s));
    updateClient(s.client);
    updateRelay(s.relay);
    graph(s.throughput || []);
    errors(s.errors || [], dest, now);
    document.querySelectorAll("button.copy").forEach(function (b) { b.hidden = false; });
    $("main").setAttribute("data-rendered", "js");
    set("live", "Live: updated every " + poll / 1000 + " s.");
  }

  function refresh() {
    clearTimeout(timer);
    var box = $("show-dest"), dest = !!(box && box.checked);
    fetch("/api/status" + (dest ? "?destinations=1" : ""), {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error("status " + r.status); return r.json(); })
      .then(function (s) { render(s, dest); })
      .catch(function (e) { set("updated", "not updated: " + e.message); })
      .finally(function () { timer = setTimeout(refresh, poll); });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button.copy");
    if (!b || !navigator.clipboard) return;
    navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; }, 1200);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var box = $("show-dest");
    // The switch lives in this page only: no cookie, no storage, no URL.
    if (box) box.addEventListener("change", refresh);
    var destForm = $("dest-form");
    if (destForm) destForm.addEventListener("submit", function (ev) { ev.preventDefault(); refresh(); });
    var form = $("new-identity");
    if (form) form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      fetch("/new-identity", {method: "POST", headers: {"X-CSRF-Token": token}, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (res) { set("new-identity-result", res.ok ? "Done: new connections use new circuits." : "This node has no client role."); refresh(); })
        .catch(function (e) { set("new-identity-result", "Failed: " + e.message); });
    });
    refresh();
  });
})();
