// A "Copy" button beside a secret or token shown once: data-copy names the element whose
// text it copies. A script file, as the Content-Security-Policy allows no inline code.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (a plain-http page): select the text for Ctrl+C instead.
    window.getSelection().selectAllChildren(source);
    button.textContent = "Selected: press Ctrl+C";
    return;
  }
  button.textContent = "Copied";
});
