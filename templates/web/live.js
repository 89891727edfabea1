// The live bus view: each server-sent event is a message archived just now; it becomes the
// table's first row (as text, never as markup). At most 500 rows are kept.
(function () {
  "use strict";
  var rows = document.getElementById("live-events");
  var status = document.getElementById("live-status");
  if (!rows || !window.EventSource) {
    return;
  }
  var source = new EventSource(rows.getAttribute("data-source"));
  var add = function (cells, note) {
    var row = rows.insertRow(0);
    cells.forEach(function (text) {
      var cell = row.insertCell(-1);
      cell.textContent = text;
      if (note) {
        cell.colSpan = 4;
        cell.className = "warning";
      }
    });
    while (rows.rows.length > 500) {
      rows.deleteRow(-1);
    }
  };
  source.onopen = function () {
    status.textContent = "Listening: new messages appear at the top.";
  };
  source.onerror = function () {
    status.textContent = "Disconnected; trying again…";
  };
  source.onmessage = function (e) {
    var m = JSON.parse(e.data);
    var at = new Date(m.at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    add([at, m.topic, m.app || "", m.summary], false);
  };
  source.addEventListener("dropped", function (e) {
    add([e.data + " messages were not shown: this page fell behind."], true);
  });
})();
