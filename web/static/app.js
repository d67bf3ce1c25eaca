// auditpgx web page: optional enhancements. Every page works without it.
"use strict";

// A filter form submits only the fields that are set, so that a shared
// address holds only the filters in use.
document.querySelectorAll("form.filters").forEach(function (form) {
  form.addEventListener("submit", function () {
    form.querySelectorAll("input, select").forEach(function (el) {
      if (el.value === "") el.disabled = true;
    });
  });
});

// Live mode: while the switch is on, entries newer than the newest shown
// are fetched and inserted above it. One request at a time: the next is
// scheduled an interval after the previous answer, so a slow server never
// has two in flight asking from the same newest entry, and a row already
// shown is never inserted again.
(function () {
  var toggle = document.getElementById("live");
  if (!toggle) return;
  var status = document.getElementById("live-status");
  var interval = parseInt(toggle.dataset.interval, 10) || 3000;
  var timer = null;
  var run = 0; // bumped on every switch; an answer for an older run is dropped
  function newest() {
    var row = document.querySelector("table.stream tr[data-id]");
    return row ? parseInt(row.dataset.id, 10) : 0;
  }
  function shown(id) {
    return document.querySelector('table.stream tr[data-id="' + id + '"]') !== null;
  }
  function poll(mine) {
    var url = toggle.dataset.url + (toggle.dataset.url.indexOf("?") < 0 ? "?" : "&") + "after=" + newest();
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (mine !== run) return;
        var table = document.querySelector("table.stream");
        if (!table) { location.reload(); return; }
        var tmp = document.createElement("table");
        tmp.innerHTML = html;
        var first = table.tBodies[0] || null;
        var added = 0;
        Array.prototype.slice.call(tmp.tBodies).forEach(function (b) {
          b.querySelectorAll("tr[data-id]").forEach(function (tr) {
            if (shown(tr.dataset.id)) tr.remove(); else tr.classList.add("fresh");
          });
          if (!b.querySelector("tr[data-id]")) return;
          table.insertBefore(b, first);
          added++;
        });
        if (added) status.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (e) {
        if (mine === run) status.textContent = "live update failed: " + e.message;
      })
      .then(function () {
        if (mine === run) timer = setTimeout(function () { poll(mine); }, interval);
      });
  }
  toggle.addEventListener("change", function () {
    run++;
    clearTimeout(timer);
    if (toggle.checked) {
      poll(run);
    } else {
      status.textContent = "";
    }
  });
})();
