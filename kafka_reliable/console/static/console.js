// kafka-reliable console: the few live parts (no build step, no framework).
"use strict";

// Cells filled on demand (a DLQ's newest records, a retry topic's head): only the rows on
// screen, a few at a time, so a cluster with hundreds of DLQs costs no more than one screen.
var MAX_LOADS = 3;
var loading = 0;
var waiting = [];

function pump() {
  while (loading < MAX_LOADS && waiting.length) {
    var el = waiting.shift();
    loading += 1;
    fetch(el.dataset.load).then(function (r) {
      return r.text().then(function (t) { return { ok: r.ok, t: t }; });
    }).then(function (res) {
      if (res.ok) { this.innerHTML = res.t; } else { this.textContent = "could not read"; }
    }.bind(el)).catch(function () { this.textContent = "could not read"; }.bind(el))
      .finally(function () { loading -= 1; pump(); });
  }
}

function loadLazy() {
  var cells = Array.prototype.filter.call(document.querySelectorAll("[data-load]"), function (el) {
    return el.textContent.trim() === "…";
  });
  if (!("IntersectionObserver" in window)) { waiting = cells; pump(); return; }
  var seen = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting) { seen.unobserve(e.target); waiting.push(e.target); }
    });
    pump();
  });
  cells.forEach(function (el) { seen.observe(el); });
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
