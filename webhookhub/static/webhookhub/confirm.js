// Asks before a form marked data-confirm="question" is sent: deleting, revoking,
// rotating a secret, sending a delivery again. A script file, not an inline onsubmit,
// because the hub's Content-Security-Policy (script-src 'self') blocks inline handlers.
"use strict";
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  },
  true,
);
