// The printable statement's Print button: shown and wired only with JavaScript (no inline handler, so the
// page keeps to the Content-Security-Policy); without it the browser's own Print does the same.
(function () {
  "use strict";
  var button = document.querySelector("[data-print]");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
