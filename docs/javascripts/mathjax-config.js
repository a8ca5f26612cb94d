// MathJax 2 (served from site/assets/mathjax, copied from the jupyter-server-mathjax
// package at build time): render the \( \) and \[ \] that arithmatex writes.
window.MathJax = {
  config: ["TeX-AMS-MML_HTMLorMML-full.js"],
  "HTML-CSS": {
    availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null,
  },
  tex2jax: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true },
  showMathMenu: false,
  messageStyle: "none",
};
