// Progressive enhancement for the download gate: a live countdown, then the download starts.
// Without JavaScript the page's meta refresh does the same.
(function () {
  "use strict";
  var gate = document.querySelector("[data-ad-gate]");
  if (!gate) return;
  var waitMs = parseInt(gate.getAttribute("data-min-view-ms"), 10) || 0;
  var url = gate.getAttribute("data-download-url");
  var countdown = document.querySelector("[data-countdown]");
  // The format chooser: the choice goes into the download link (no reload, so the ad keeps its time).
  var chooser = document.querySelector("[data-format-select]");
  var link = document.querySelector("[data-download-link]");
  if (chooser) {
    var apply = document.querySelector("[data-format-apply]");
    if (apply) apply.remove();  // the link carries the choice; a reload would show another ad
    chooser.addEventListener("change", function () {
      var next = new URL(url, window.location.href);
      if (chooser.value) next.searchParams.set("format", chooser.value);
      else next.searchParams.delete("format");
      url = next.pathname + next.search;
      if (link) link.setAttribute("href", url);
    });
  }
  var started = Date.now();
  var done = false;
  function tick() {
    var left = Math.max(0, waitMs + 1000 - (Date.now() - started));
    if (countdown) {
      countdown.innerHTML = left > 0
        ? "Your download starts in <strong>" + Math.ceil(left / 1000) + "</strong> seconds."
        : "Your download is starting…";
    }
    if (left <= 0 && !done) {
      done = true;
      window.location.assign(url);
      return;
    }
    if (!done) window.setTimeout(tick, 250);
  }
  tick();
})();
