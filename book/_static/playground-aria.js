/* Chapter 7's playground sliders say their value, not their stop number.

   A SelectionSlider is a noUiSlider over the option indices, so its handle's
   aria-valuetext read "5" for alpha = 0.5. Each slider row (.bijepa-slider-row, from
   bijepa_nb.book.widgets._slider_row) has a read-only readout, a Stack that shows one
   label ("α = 0.5"); this copies that label to the handle's aria-valuetext, and the
   slider's description to its aria-label, whenever the widgets render or a slider
   moves (the readout's Stack swaps its child; noUiSlider rewrites aria-valuetext).
   Loaded only on pages with saved widget state (nb_ipywidgets_js in _config.yml). */
(() => {
  function update() {
    for (const row of document.querySelectorAll(".bijepa-slider-row")) {
      const handle = row.querySelector(".noUi-handle");
      const readout = row.querySelector(".bijepa-readout");
      const label = row.querySelector(".widget-slider > .widget-label");
      if (!handle || !readout) continue;
      const text = readout.textContent.trim();
      if (text && handle.getAttribute("aria-valuetext") !== text) {
        handle.setAttribute("aria-valuetext", text);
      }
      const name = label ? label.textContent.trim() : "";
      if (name && handle.getAttribute("aria-label") !== name) {
        handle.setAttribute("aria-label", name);
      }
    }
  }
  function start() {
    new MutationObserver(update).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
      attributeFilter: ["aria-valuetext"],
    });
    update();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
