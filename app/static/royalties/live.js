// Progressive enhancement: refresh figures the server already rendered (balances, batch progress).
(function () {
  "use strict";
  function poll(el, every, apply) {
    var url = el.getAttribute("data-src");
    if (!url) return;
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && apply(data) !== false) setTimeout(tick, every); })
        .catch(function () { setTimeout(tick, every * 3); });
    }
    setTimeout(tick, every);
  }
  var balance = document.getElementById("live-balance");
  if (balance) {
    poll(balance, 5000, function (data) {
      (data.balances || []).forEach(function (b) {
        var node = balance.querySelector('[data-balance="' + b.currency + '"]');
        if (node) node.textContent = b.payable_display;
      });
    });
  }
  var progress = document.getElementById("batch-progress");
  if (progress) {
    poll(progress, 1000, function (data) {
      var bar = progress.querySelector("progress");
      if (bar) { bar.max = data.total || 1; bar.value = data.done; }
      var text = progress.querySelector("[data-progress-text]");
      if (text) text.textContent = data.done + " of " + data.total + " items finished (" +
        data.counts.settled + " settled, " + data.counts.reversed + " reversed)";
      var status = document.querySelector("[data-batch-status]");
      if (status) status.textContent = data.status;
      if (data.status !== "executing") { if (progress.getAttribute("data-reload") === "1") location.reload(); return false; }
    });
  }
})();
