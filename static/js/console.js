// Ops Console: small progressive enhancements. Pages work without this file.
// No inline scripts anywhere: the Content-Security-Policy only allows files served by the console.
(function () {
  "use strict";

  // <time data-countdown="ISO-8601 deadline"> counts down (or up, once breached) every second.
  function formatDuration(seconds) {
    var s = Math.abs(Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var text = (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
    return seconds < 0 ? "breached by " + text : text + " left";
  }
  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var deadline = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(deadline)) return;
      var left = (deadline - now) / 1000;
      el.textContent = formatDuration(left);
      el.classList.toggle("breached", left < 0);
    });
  }
  setInterval(tickCountdowns, 1000);
  document.addEventListener("DOMContentLoaded", tickCountdowns);
  document.addEventListener("htmx:afterSettle", tickCountdowns);

  // Live pages (opsconsole/live.py): the #live-poll element re-asks for this page
  // with If-None-Match; a 304 swaps nothing. Skipped while the tab is hidden or
  // while someone is typing in (or has changed a field of) a live region.
  function liveRegions(poller) {
    return (poller.getAttribute("hx-select-oob") || "").split(",").map(function (selector) {
      return document.querySelector(selector.trim());
    }).filter(Boolean);
  }
  function isEdited(region) {
    var active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
    return Array.prototype.some.call(region.querySelectorAll("input, textarea, select"), function (field) {
      if (field.type === "hidden") return false;
      if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
      if (field.tagName === "SELECT") {
        return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return field.value !== field.defaultValue;
    });
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var poller = event.detail.elt;
    if (poller.id !== "live-poll") return;
    if (document.hidden || liveRegions(poller).some(isEdited)) event.preventDefault();
  });
  document.addEventListener("htmx:configRequest", function (event) {
    var poller = event.detail.elt;
    if (poller.id === "live-poll" && poller.dataset.etag) event.detail.headers["If-None-Match"] = poller.dataset.etag;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var poller = event.detail.elt, xhr = event.detail.xhr;
    if (poller.id === "live-poll" && xhr && xhr.status === 200 && xhr.getResponseHeader("ETag")) {
      poller.dataset.etag = xhr.getResponseHeader("ETag");
    }
  });
  document.addEventListener("visibilitychange", function () {
    var poller = document.getElementById("live-poll");
    if (poller && !document.hidden && window.htmx) window.htmx.trigger(poller, "live-now");
  });

  // Phone width: the navigation folds behind a Menu button (CSS shows the
  // button only on narrow screens; without this script the menu stays open).
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".menu-toggle");
    if (!toggle) return;
    document.documentElement.classList.add("has-menu-toggle");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      document.documentElement.classList.toggle("menu-open", open);
    });
  });

  // Narrow screens show table rows as cards: each cell is labelled with its
  // column's header (data-label, shown by CSS), set here once per table.
  function labelCells(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!heads.length) return;
      table.classList.add("cards");
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label") && !cell.hasAttribute("colspan")) {
            cell.setAttribute("data-label", heads[i]);
          }
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { labelCells(document); });
  document.addEventListener("htmx:afterSettle", function (event) { labelCells(document); });

  // <button data-confirm="question"> asks before submitting (htmx's hx-confirm needs no script from us).
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
