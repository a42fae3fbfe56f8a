// The webhook add form: Owner only for a user webhook, Namespace only for a namespace
// webhook, and only the event types the chosen scope receives (the server decides again
// on save; this only keeps the form honest).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const scope = document.getElementById("id_scope");
  if (!scope) return;  // a webhook's own page: its scope is fixed, its types are its scope's
  const rows = {
    owner: document.querySelector(".field-owner"),
    namespace: document.querySelector(".field-namespace"),
  };
  const events = document.getElementById("id_event_types");
  const show = () => {
    if (rows.owner) rows.owner.hidden = scope.value !== "user";
    if (rows.namespace) rows.namespace.hidden = scope.value !== "namespace";
    if (!events) return;
    for (const box of events.querySelectorAll("input[data-scopes]")) {
      const fits = box.dataset.scopes.split(" ").includes(scope.value);
      box.closest("div").hidden = !fits;
      if (!fits) box.checked = false;
    }
    for (const group of events.children) {
      const options = group.querySelectorAll(":scope > div");
      group.hidden = options.length > 0 && [...options].every((o) => o.hidden);
    }
  };
  scope.addEventListener("change", show);
  show();
});
