// kafka-reliable console: the few live parts (no build step, no framework).
"use strict";

// Cells filled on demand (a DLQ's newest records, a retry topic's head).
function loadLazy() {
  document.querySelectorAll("[data-load]").forEach(function (el) {
    if (el.textContent.trim() !== "…") { return; }
    fetch(el.dataset.load).then(function (r) {
      return r.text().then(function (t) { return { ok: r.ok, t: t }; });
    }).then(function (res) {
      if (res.ok) { el.innerHTML = res.t; } else { el.textContent = "could not read"; }
    }).catch(function () { el.textContent = "could not read"; });
  });
}

// A running job: progress from /jobs/<id>.json, the page reloaded when it ends.
function followJob() {
  var el = document.getElementById("job-state");
  if (!el || el.dataset.state !== "running") { return; }
  var bar = document.getElementById("job-progress");
  var numbers = document.getElementById("job-numbers");
  function poll() {
    fetch("/jobs/" + el.dataset.job + ".json").then(function (r) { return r.json(); }).then(function (p) {
      if (p.state !== "running") { window.location.reload(); return; }
      if (bar) { bar.value = p.percent; }
      if (numbers) { numbers.textContent = p.scanned + " of " + p.total + " read, " + p.replayed + " redriven"; }
      setTimeout(poll, 400);
    }).catch(function () { setTimeout(poll, 2000); });
  }
  poll();
}

function selectAll() {
  var all = document.getElementById("select-all");
  if (!all) { return; }
  all.addEventListener("change", function () {
    document.querySelectorAll("input.sel").forEach(function (c) { c.checked = all.checked; });
  });
}

document.addEventListener("DOMContentLoaded", function () { loadLazy(); followJob(); selectAll(); });
