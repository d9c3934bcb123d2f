// ReDoc from this server's own files (no CDN, no inline script: the page's CSP).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
});
