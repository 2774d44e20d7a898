// An order or top-up that is being paid: ask Ninety every second whether Stripe's webhook has fulfilled it,
// and show the outcome. Without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var text = box.querySelector("[data-status-text]");
  var started = Date.now();

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (state && state.status !== "pending") {
          window.location.reload();  // the server renders the outcome (links, receipt, what went wrong)
          return;
        }
        if (Date.now() - started > 120000) {
          text.textContent = "This is taking longer than usual. The page will show the outcome when you reload it.";
          return;
        }
        window.setTimeout(poll, 1000);
      }, function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
