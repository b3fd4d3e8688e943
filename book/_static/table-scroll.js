/* Wide tables scroll with a visible cue.

   pydata-sphinx-theme wraps every table in .pst-scrollable-table-container
   (overflow-x: auto), but nothing shows that columns lie beyond the right edge, and
   phones hide scrollbars. When a table is wider than its container this script puts a
   one-line hint above it ("scroll sideways: N columns") and marks the container, whose
   right edge then gets a shadow (table-scroll.css); both go away when the table fits,
   e.g. after the window is widened. */
(() => {
  const HINT = "table-scroll-hint";
  function update() {
    for (const box of document.querySelectorAll(".pst-scrollable-table-container")) {
      const table = box.querySelector("table");
      if (!table) continue;
      const wide = table.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("table-scrolls", wide);
      const prev = box.previousElementSibling;
      const has = prev && prev.classList.contains(HINT);
      if (wide && !has) {
        const hint = document.createElement("p");
        hint.className = HINT;
        const cols = table.rows.length ? table.rows[0].cells.length : 0;
        hint.textContent = `\u21c6 scroll sideways: ${cols} columns`;
        box.before(hint);
      } else if (!wide && has) {
        prev.remove();
      }
    }
  }
  window.addEventListener("load", update);
  window.addEventListener("resize", update);
  document.addEventListener("DOMContentLoaded", update);
})();
