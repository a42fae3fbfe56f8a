// Presence (accounts/presence.py): while this page is open it tells the hub so, as Open
// WebUI's socket connection does, and a user with a page open gets no notification.
// A beat at load and every data-every seconds, visible or in a background tab (whose
// timers the browser may slow to one a minute); one more when the page shows again;
// a goodbye when it is closed, left, reloaded or frozen, so it stops counting at once.
"use strict";
(() => {
  const script = document.currentScript;
  if (!script || !script.dataset.url) return;
  const { url, csrf } = script.dataset;
  const every = Number(script.dataset.every) * 1000;
  // crypto.getRandomValues works on plain-http pages too (randomUUID does not).
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const page = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  let timer = null;

  function send(state) {
    const form = new FormData();
    form.append("csrfmiddlewaretoken", csrf);
    form.append("page", page);
    form.append("state", state);
    // A beacon outlives the page, so the goodbye of a closing page still arrives.
    if (navigator.sendBeacon && navigator.sendBeacon(url, form)) return;
    fetch(url, { method: "POST", body: form, credentials: "same-origin", keepalive: true })
      .catch(() => {});
  }

  function open() {
    send("open");
    clearInterval(timer);
    timer = setInterval(() => send("open"), every);
  }

  function gone() {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    send("gone");
  }

  window.addEventListener("pagehide", gone);
  document.addEventListener("freeze", gone);
  document.addEventListener("resume", open);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) open(); // back from the back/forward cache
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && timer !== null) send("open");
  });
  open();
})();
