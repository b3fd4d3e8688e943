/* Sidebar toggles that work (pydata-sphinx-theme 0.17.1 + sphinx-book-theme 1.3.0).

   Each page has two menu buttons (.primary-toggle) and two contents buttons
   (.secondary-toggle): a pair in pydata's header, which sphinx-book-theme hides, and
   the visible pair in the article header. Both themes bind their handlers with
   document.querySelector, i.e. to the first, hidden button of each kind, so the
   visible buttons did nothing (pydata-sphinx-theme issue #2451).

   This script routes a click on any toggle to the first one of its kind, so the
   themes' own handlers run: below 992 px they open the chapter list or the page
   contents as a dialog; from 992 px the menu button collapses/expands the chapter
   list. The click is stopped at the document (capture phase) before it reaches
   the visible button, so a theme release that binds every button cannot act twice.
   Remove this file (and its html_js_files entry) once the themes bind all buttons. */
(() => {
  const KINDS = [".primary-toggle", ".secondary-toggle"];
  document.addEventListener(
    "click",
    (event) => {
      const target = event.target;
      if (!(target instanceof Element)) return;
      for (const kind of KINDS) {
        const button = target.closest(kind);
        if (!button) continue;
        const bound = document.querySelector(kind);
        if (!bound || bound === button) return;
        event.preventDefault();
        event.stopPropagation();
        bound.click();
        // As sphinx-book-theme does for the button it binds: drop focus, or the
        // button's tooltip stays up after the click (focus moved into an opened
        // dialog already, and returns to this button when the dialog closes).
        button.blur();
        return;
      }
    },
    true,
  );
})();
