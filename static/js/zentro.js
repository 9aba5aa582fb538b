// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');
  // HTMX sends the CSRF token header on every request it makes.
  document.addEventListener("htmx:configRequest", function (evt) {
    if (token) evt.detail.headers["X-CSRFToken"] = token.content;
  });
  document.addEventListener("change", function (evt) {
    if (evt.target.matches("select[data-autosubmit]")) evt.target.form.requestSubmit();
  });
  document.addEventListener("submit", function (evt) {
    var msg = evt.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) evt.preventDefault();
  });
  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest("[data-copy]");
    if (!btn) return;
    var el = document.querySelector(btn.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent.trim()).then(function () { btn.textContent = "Copied"; });
    }
  });
})();
