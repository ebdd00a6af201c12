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

  // <button data-confirm="question"> asks before submitting (htmx's hx-confirm needs no script from us).
  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
