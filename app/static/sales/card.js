// NinetyCard: Stripe.js's card element and the confirmation of a PaymentIntent, for every card form on
// Ninety (checkout, advertiser top-up, subscriptions). The page includes sales/_stripe_js.html, which loads
// Stripe.js (from js.stripe.com, or from the embedded localstripe in the demo and the tests) and this file.
//
// With real Stripe.js, `stripe.confirmCardPayment(clientSecret, {payment_method: {card}})` does everything,
// 3-D Secure included. localstripe's stand-in Stripe.js cannot confirm a card (its confirmCardPayment only
// completes a 3-D Secure step), so there the card is tokenised, the server confirms the PaymentIntent with
// it, and a `requires_action` answer is completed with `stripe.confirmCardPayment(clientSecret)`.
// Nothing is granted here either way: the order is fulfilled by Stripe's signed webhook.
(function () {
  "use strict";
  var settings = document.querySelector("[data-stripe-key]");

  function csrf() {
    var holder = document.querySelector("[data-csrf]");
    return holder ? holder.getAttribute("data-csrf") : "";
  }

  // POST JSON to one of Ninety's endpoints; resolves with the body, or {error: {message}} on a problem.
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          return {error: {message: data.detail || data.title || ("The server answered " + response.status + "."),
                          code: data.code, status: response.status}};
        }
        return data;
      });
    }, function () {
      return {error: {message: "Ninety could not be reached. Check your connection and try again."}};
    });
  }

  function message(error, fallback) {
    if (!error) return fallback;
    if (typeof error === "string") return error;
    return error.message || fallback;
  }

  function mount(container) {
    if (!settings || typeof window.Stripe !== "function") return null;
    var stripe = window.Stripe(settings.getAttribute("data-stripe-key"));
    var card = stripe.elements().create("card", {hidePostalCode: true});
    card.mount(container);
    return {stripe: stripe, card: card, local: settings.getAttribute("data-stripe-local") === "1"};
  }

  // Confirm the intent with the card in `handle`. `intent` is what Ninety answered when it created the
  // order: {client_secret, confirm_url}. Resolves with {status} or {error: {message}}.
  function confirm(handle, intent) {
    if (!handle.local) {
      return handle.stripe.confirmCardPayment(intent.client_secret, {payment_method: {card: handle.card}})
        .then(function (result) {
          if (result.error) return {error: {message: message(result.error, "The card was not accepted.")}};
          return {status: result.paymentIntent.status};
        });
    }
    return Promise.resolve().then(function () {
      if (!handle.card.value || !handle.card.value.card || !handle.card.value.card.number) {
        return {error: {message: "Enter the card's number, expiry date and security code."}};
      }
      return handle.stripe.createToken(handle.card).then(function (result) {
        if (result.error) {
          return {error: {message: message(result.error, "Check the card's number, expiry date and security code.")}};
        }
        return post(intent.confirm_url, {payment_method: result.token.card.id}).then(function (answer) {
          if (answer.error || answer.status !== "requires_action") return answer;
          return handle.stripe.confirmCardPayment(answer.client_secret).then(function (secured) {
            if (secured.error) {
              return {error: {message: message(secured.error, "The card's 3-D Secure check failed.")}};
            }
            if (secured.paymentIntent.status === "requires_payment_method") {
              return {error: {message: "The card's 3-D Secure check failed; try again or use another card."}};
            }
            return {status: secured.paymentIntent.status};
          });
        });
      });
    });
  }

  // What every card form does first: find the page's [data-card-form], mount the card element in its
  // [data-card-element], show its Pay button ([data-pay]) and hide the no-JavaScript notice. Returns
  // {form, errorBox, button, handle, fail(text)} (fail shows the error and re-arms the button), or null
  // when the page has no card form or the card element could not be loaded (the error box says so).
  function setupForm() {
    var form = document.querySelector("[data-card-form]");
    if (!form) return null;
    var errorBox = form.querySelector("[data-card-error]");
    var button = form.querySelector("[data-pay]");
    var handle = mount(form.querySelector("[data-card-element]"));
    if (!handle) {
      errorBox.textContent = "The card form could not be loaded. Reload the page to try again.";
      return null;
    }
    button.hidden = false;
    var notice = form.querySelector("[data-needs-js]");
    if (notice) notice.hidden = true;
    return {
      form: form, errorBox: errorBox, button: button, handle: handle,
      fail: function (text) {
        errorBox.textContent = text;
        button.disabled = false;
        button.textContent = button.getAttribute("data-label");
      }
    };
  }

  window.NinetyCard = {mount: mount, confirm: confirm, post: post, setupForm: setupForm};
})();
