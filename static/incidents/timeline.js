// Incident timeline: a poll and a note post can both return the same new
// event; keep one copy of each event (the page works without this file).
(function () {
  "use strict";
  function dedupe() {
    var seen = {};
    document.querySelectorAll("ol.events li[data-event-id]").forEach(function (el) {
      var id = el.getAttribute("data-event-id");
      if (seen[id]) { el.remove(); } else { seen[id] = true; }
    });
  }
  document.addEventListener("htmx:afterSettle", dedupe);
})();
