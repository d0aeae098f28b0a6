// Sortable leaderboard tables: click a header to sort its table by that column; click again
// to reverse. Numbers sort numerically (data-sort holds the raw value), missing values last.
(function () {
  "use strict";
  function key(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-sort") : "";
    if (raw === null || raw === "") { return null; }
    if (numeric) { var x = parseFloat(raw); return isNaN(x) ? null : x; }
    return raw;
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "number";
    var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" :
      (th.getAttribute("aria-sort") === "ascending" ? "descending" :
        (numeric && th.getAttribute("data-direction") !== "lower" ? "descending" : "ascending"));
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ka = key(a.cells[index], numeric), kb = key(b.cells[index], numeric);
      if (ka === null && kb === null) { return 0; }
      if (ka === null) { return 1; }
      if (kb === null) { return -1; }
      var c = numeric ? ka - kb : String(ka).localeCompare(String(kb));
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  document.querySelectorAll("table.leaderboard th.sortable").forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); }
    });
  });
  var data = document.getElementById("prunebench-data");
  if (data) { window.prunebench = JSON.parse(data.textContent); }
}());
