// @jupyter-widgets/html-manager 1.0.15 typesets widget labels with the MathJax 2 API,
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, el])`, whenever `window.MathJax` exists.
// The book loads MathJax 3, which has no `Hub`, so every labelled widget raised
// "Cannot read properties of undefined (reading 'Queue')". This maps the one call the
// widgets make onto MathJax 3's typesetPromise. It must run after MathJax's own script
// has replaced the `window.MathJax` config object (deferred scripts run before
// DOMContentLoaded) and before the widgets render (on window load). It also rewrites
// $...$ in the labels to \(...\), the delimiters the book's MathJax is configured for.
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj === undefined || mj.Hub !== undefined) {
    return;
  }
  mj.Hub = {
    Queue: function () {
      var elements = [];
      Array.prototype.forEach.call(arguments, function (job) {
        if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
          elements.push(job[2]);
        }
      });
      var m = window.MathJax;
      // No MathJax 3 on the page (only its config object): leave the labels as they are.
      if (!elements.length || !m || !m.startup || !m.startup.promise) {
        return;
      }
      // Jupyter writes widget-label math as $...$; the book's MathJax only knows \(...\)
      // (MyST converts the page's own $...$), so rewrite the labels' text nodes.
      elements.forEach(function (el) {
        var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (var node = walker.nextNode(); node; node = walker.nextNode()) {
          if (node.nodeValue.indexOf("$") !== -1) {
            node.nodeValue = node.nodeValue
              .replace(/\$\$([^$]+)\$\$/g, "\\[$1\\]")
              .replace(/\$([^$]+)\$/g, "\\($1\\)");
          }
        }
      });
      m.startup.promise
        .then(function () {
          return m.typesetPromise(elements);
        })
        .catch(function (err) {
          console.warn("MathJax typeset of a widget label failed:", err);
        });
    },
  };
});
