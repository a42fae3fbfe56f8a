// On a phone the admin's tables are cards, as the hub's own are: each table with a
// header row gets class "stack" and each cell its column's heading as data-label
// (admin.css shows them below 768 px). A script file: the Content-Security-Policy
// allows no inline code.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table")) {
    const head = table.tHead && table.tHead.rows[0];
    if (!head || head.cells.length < 3) continue;
    const labels = [];
    for (const th of head.cells) {
      const text = (th.querySelector(".text") || th).textContent.trim();
      for (let i = 0; i < th.colSpan; i++) labels.push(text);
    }
    table.classList.add("stack");
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          if (labels[column] && !cell.dataset.label) cell.dataset.label = labels[column];
          column += cell.colSpan;
        }
      }
    }
  }
});
