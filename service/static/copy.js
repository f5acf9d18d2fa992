// "Copy the link" buttons: shown only where the clipboard can be written.
// Without JavaScript the link itself is there to open, bookmark or share.
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) return;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var status = document.getElementById(button.getAttribute("data-status"));
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
        if (status) status.textContent = button.getAttribute("data-copied");
      });
    });
  });
})();
