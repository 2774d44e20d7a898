// The checkout and top-up forms: create the order (Ninety validates the amount), confirm its PaymentIntent
// with the card, then go to the order's page, which waits for Stripe's webhook to fulfil it.
(function () {
  "use strict";
  var card = window.NinetyCard && window.NinetyCard.setupForm();
  if (!card) return;
  var form = card.form, errorBox = card.errorBox, button = card.button, handle = card.handle, fail = card.fail;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.textContent = "";
    button.disabled = true;
    button.textContent = "Paying…";
    var body = {};
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (input) {
      body[input.name] = input.value;
    });
    // Each attempt is an order of its own: a declined or unauthenticated PaymentIntent is not reused.
    window.NinetyCard.post(form.getAttribute("data-create-url"), body).then(function (intent) {
      if (intent.error) return fail(intent.error.message);
      return window.NinetyCard.confirm(handle, intent).then(function (result) {
        if (result.error) return fail(result.error.message);
        window.location.assign(intent.next_url);
      });
    }).catch(function () {
      fail("Something went wrong before the payment was made. Try again.");
    });
  });
})();
