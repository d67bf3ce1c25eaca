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
// are fetched every interval and inserted above it.
(function () {
  var toggle = document.getElementById("live");
  if (!toggle) return;
  var status = document.getElementById("live-status");
  var interval = parseInt(toggle.dataset.interval, 10) || 3000;
  var timer = null;
  function newest() {
    var row = document.querySelector("table.stream tr[data-id]");
    return row ? parseInt(row.dataset.id, 10) : 0;
  }
  function poll() {
    var url = toggle.dataset.url + (toggle.dataset.url.indexOf("?") < 0 ? "?" : "&") + "after=" + newest();
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var table = document.querySelector("table.stream");
        if (!table) { location.reload(); return; }
        var tmp = document.createElement("table");
        tmp.innerHTML = html;
        var bodies = Array.prototype.slice.call(tmp.tBodies);
        var first = table.tBodies[0] || null;
        bodies.forEach(function (b) {
          b.querySelectorAll("tr[data-id]").forEach(function (tr) { tr.classList.add("fresh"); });
          table.insertBefore(b, first);
        });
        status.textContent = bodies.length ? "updated " + new Date().toLocaleTimeString() : "";
      })
      .catch(function (e) { status.textContent = "live update failed: " + e.message; });
  }
  toggle.addEventListener("change", function () {
    if (toggle.checked) {
      poll();
      timer = setInterval(poll, interval);
    } else {
      clearInterval(timer);
      status.textContent = "";
    }
  });
})();
