// Keeps the order page current without reloading: polls the page-only
// fragment of the order (same origin, the cookie session) and swaps it in
// when the order changed. Stops once nothing about the order can change.
(function () {
  "use strict";
  var box = document.getElementById("order-live");
  if (!box) { return; }
  var src = box.getAttribute("data-src");

  function current() { return box.querySelector(".live"); }

  function showCartCount(live) {
    var badge = document.getElementById("cart-count");
    var count = live.getAttribute("data-cart-count");
    if (!badge || count === null) { return; }
    // The leading space keeps the link's accessible name "Cart 2", not "Cart2".
    badge.textContent = count === "0" ? "" : " " + count;
    badge.hidden = count === "0";
  }

  function delay() {
    var live = current();
    return live && live.getAttribute("data-status") === "pending" ? 1000 : 4000;
  }

  function schedule() {
    var live = current();
    if (live && live.getAttribute("data-live") === "true") {
      window.setTimeout(poll, delay());
    }
  }

  function poll() {
    fetch(src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").querySelector(".live");
        var live = current();
        if (next) { showCartCount(next); }
        if (next && live && next.getAttribute("data-version") !== live.getAttribute("data-version")) {
          var focused = document.activeElement && box.contains(document.activeElement);
          live.replaceWith(document.importNode(next, true));
          if (focused) { box.focus(); }
        }
        schedule();
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  box.setAttribute("tabindex", "-1");
  schedule();
})();
