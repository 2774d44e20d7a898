// Subscribing to premium: Ninety creates a SetupIntent, Stripe.js confirms the card with it (3-D Secure
// included, in real Stripe.js and in localstripe's stand-in alike), Ninety subscribes with that card, and a
// first payment that needs 3-D Secure is completed with stripe.confirmCardPayment. Premium itself starts
// when Stripe's signed webhook says the invoice is paid; the account page waits for it.
(function () {
  "use strict";
  var card = window.NinetyCard && window.NinetyCard.setupForm();
  if (!card) return;
  var form = card.form, errorBox = card.errorBox, button = card.button, handle = card.handle, fail = card.fail;
  var currency = form.getAttribute("data-currency");

  function text(error, fallback) {
    return (error && (error.message || (typeof error === "string" && error))) || fallback;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.textContent = "";
    button.disabled = true;
    button.textContent = "Subscribing…";
    window.NinetyCard.post(form.getAttribute("data-setup-url"), {currency: currency}).then(function (setup) {
      if (setup.error) return fail(setup.error.message);
      return handle.stripe.confirmCardSetup(setup.client_secret, {payment_method: {card: handle.card}})
        .then(function (confirmed) {
          if (confirmed.error) return fail(text(confirmed.error, "The card was not accepted."));
          return window.NinetyCard.post(setup.subscribe_url, {currency: currency, setup_intent: setup.setup_intent})
            .then(function (answer) {
              if (answer.error) return fail(answer.error.message);
              if (answer.status !== "requires_action") return window.location.assign(answer.next_url);
              return handle.stripe.confirmCardPayment(answer.client_secret).then(function (secured) {
                if (secured.error || (secured.paymentIntent && secured.paymentIntent.status === "requires_payment_method")) {
                  return fail("The card's 3-D Secure check failed; try again or use another card.");
                }
                window.location.assign(answer.next_url);
              });
            });
        });
    }).catch(function () {
      fail("Something went wrong before the subscription started. Try again.");
    });
  });
})();
