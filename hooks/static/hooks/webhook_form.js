// The webhook add form: Owner only for a user webhook, Namespace only for a namespace
// webhook (the server decides again on save; this only keeps the form honest).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const scope = document.getElementById("id_scope");
  if (!scope) return;  // a webhook's own page: its scope is fixed
  const rows = {
    owner: document.querySelector(".field-owner"),
    namespace: document.querySelector(".field-namespace"),
  };
  const show = () => {
    if (rows.owner) rows.owner.hidden = scope.value !== "user";
    if (rows.namespace) rows.namespace.hidden = scope.value !== "namespace";
  };
  scope.addEventListener("change", show);
  show();
});
