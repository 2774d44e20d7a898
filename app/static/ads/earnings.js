// Live earnings: refresh the table from earnings.json every few seconds (the page works without this).
(function () {
  "use strict";
  var table = document.querySelector("[data-earnings]");
  if (!table || !window.fetch) return;
  var source = table.getAttribute("data-source");
  function full(money) {
    var micros = money.micros, sign = micros < 0 ? "-" : "";
    micros = Math.abs(micros);
    var units = Math.floor(micros / 1000000), rest = String(micros % 1000000);
    while (rest.length < 6) rest = "0" + rest;
    var symbols = {USD: "$", EUR: "€", GBP: "£"};
    var amount = units + "." + rest;
    return symbols[money.currency] ? sign + symbols[money.currency] + amount : sign + amount + " " + money.currency;
  }
  function render(items) {
    var body = table.tBodies[0];
    items.forEach(function (item) {
      var row = body.querySelector('tr[data-track="' + item.track_id + '"]');
      if (!row) {
        row = document.createElement("tr");
        row.setAttribute("data-track", item.track_id);
        var th = document.createElement("th");
        th.scope = "row";
        th.textContent = item.title;
        row.appendChild(th);
        ["impressions", "payable", "held"].forEach(function (field) {
          var td = document.createElement("td");
          td.className = "num";
          td.setAttribute("data-field", field);
          row.appendChild(td);
        });
        var empty = body.querySelector("td[colspan]");
        if (empty) empty.parentNode.remove();
        body.appendChild(row);
      }
      row.querySelector('[data-field="impressions"]').textContent = item.impressions;
      row.querySelector('[data-field="payable"]').textContent = full(item.payable);
      row.querySelector('[data-field="held"]').textContent = item.held.display;
    });
  }
  function poll() {
    fetch(source, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) render(body.items); })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 3000);
})();
