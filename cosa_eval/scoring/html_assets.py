"""Inline CSS and JS of the static leaderboard page (no network asset, no framework)."""
from __future__ import annotations

PAGE_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; }
.note { max-width: 70rem; color: #444; }
table { border-collapse: collapse; }
.scroll { overflow-x: auto; }
table.board { width: 100%; }
th, td { padding: .3rem .55rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:nth-child(-n+5), td:nth-child(-n+5) { text-align: left; }
table.board > thead th { cursor: pointer; user-select: none; background: #f3f4f6; position: sticky; top: 0; }
table.board > thead th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.board > thead th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.run { cursor: pointer; }
tr.run:hover, tr.run:focus { background: #eef4ff; outline: none; }
tr.run[aria-expanded="true"] { background: #e3edff; }
tr.reported td { color: #555; font-style: italic; }
tr.detail > td { background: #fafafa; padding: .5rem 1rem 1rem; text-align: left; }
table.configs th, table.configs td { font-size: 12.5px; }
table.configs th:nth-child(-n+2), table.configs td:nth-child(-n+2) { text-align: left; }
table.configs th:nth-last-child(-n+2), table.configs td:nth-last-child(-n+2) { text-align: left; white-space: normal; }
.meta { color: #666; font-size: 12px; }
.warning { max-width: 70rem; padding: .6rem .9rem; border: 2px solid #b42318; background: #fef3f2;
           color: #7a1209; font-weight: 600; }
figure.ratings { margin: .8rem 0 0; }
figure.ratings figcaption { color: #444; font-size: 12.5px; }
.bins { display: flex; gap: .4rem; align-items: flex-end; height: 100px; margin-top: .3rem; }
.bin { display: flex; flex-direction: column; align-items: center; justify-content: flex-end; width: 2.2rem; }
.bin .bar { display: block; width: 100%; background: #2f6fde; min-height: 1px; }
.bin .count, .bin .label { font-size: 11.5px; color: #333; }
.bin .label { border-top: 1px solid #999; width: 100%; text-align: center; font-weight: 600; }
@media (max-width: 700px) { body { margin: .8rem; } }
"""

PAGE_SCRIPT = """
(function () {
  "use strict";
  function sortKey(cell, numeric) {
    var value = cell ? cell.getAttribute("data-v") : "";
    if (!numeric) { return value.toLowerCase(); }
    return value === "" ? null : parseFloat(value);
  }
  function order(a, b, numeric, direction) {
    if (!numeric) { return direction * a.localeCompare(b); }
    if (a === null || b === null) { return (a === null) - (b === null); }
    return direction * (a - b);
  }
  function sortBy(th) {
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var now = th.getAttribute("aria-sort");
    var direction = now ? (now === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
    var body = table.tBodies[0];
    var entries = Array.prototype.filter.call(body.children, function (row) {
      return row.classList.contains("run");
    }).map(function (row, position) {
      return { row: row, detail: row.nextElementSibling, key: sortKey(row.children[index], numeric),
               position: position };
    });
    entries.sort(function (a, b) {
      return order(a.key, b.key, numeric, direction) || a.position - b.position;
    });
    entries.forEach(function (entry) { body.appendChild(entry.row); body.appendChild(entry.detail); });
    Array.prototype.forEach.call(th.parentNode.children, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
  }
  function toggle(row) {
    var detail = row.nextElementSibling;
    var opening = detail.hidden;
    detail.hidden = !opening;
    row.setAttribute("aria-expanded", opening ? "true" : "false");
  }
  function onActivate(element, action) {
    element.addEventListener("click", action);
    element.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); action(); }
    });
  }
  document.querySelectorAll("table.board > thead th").forEach(function (th) {
    onActivate(th, function () { sortBy(th); });
  });
  document.querySelectorAll("table.board > tbody > tr.run").forEach(function (row) {
    onActivate(row, function () { toggle(row); });
  });
})();
"""
