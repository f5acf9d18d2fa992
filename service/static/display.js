// The call-in display, live: the server sends the whole board again as a
// Server-Sent Event whenever it changes, and it replaces the one shown.
// Without JavaScript the page reloads itself (a <noscript> meta refresh).
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.EventSource) {
    window.setTimeout(function () { window.location.reload(); }, 15000);
    return;
  }
  var source = new EventSource(board.getAttribute("data-events"));
  source.addEventListener("board", function (event) {
    // The server escaped every value when it rendered the board.
    board.innerHTML = JSON.parse(event.data).html;
    board.setAttribute("data-updated", String(Date.now()));
  });
})();
