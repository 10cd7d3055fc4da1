/* cosa-eval run explorer. Every value from the data is put in the page with textContent or as an
   attribute value, never parsed as markup. Rows are drawn lazily: only those in view exist. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("cosa-data").textContent);
  var ROWS = D.rows, ROW_H = 30, LONG = 100000, PAGE = 50;
  var LABELS = [];
  D.sources.forEach(function (s) { if (LABELS.indexOf(s.label) < 0) LABELS.push(s.label); });
  var RUNS = {};
  D.runs.forEach(function (r) { RUNS[r.key] = r; });
  var BY_RUN = {};
  ROWS.forEach(function (r) { (BY_RUN[r.run] = BY_RUN[r.run] || {})[r.sample_id] = r; });
  var state = {view: "rows", order: [], selected: -1, open: null, sort: null, shown: PAGE, group: -1,
               groups: [], f: {}, q: ""};
  var hays = [], marks = {}, ui = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) { for (var i = 1; i < arguments.length; i++) parent.appendChild(arguments[i]); return parent; }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function short(s, n) { s = String(s == null ? "" : s); return s.length > n ? s.slice(0, n) + "\u2026" : s; }
  function line(s, n) { return short(s, n + 50).replace(/\s+/g, " ").slice(0, n); }
  function yesNo(b) { return b === true ? "yes" : b === false ? "no" : "\u2014"; }
  function num(x) { return x === null || x === undefined ? "\u2014" : (Math.round(x * 100) / 100).toString(); }

  /* ---- marks (adjudication), kept in localStorage per run ---- */
  function storeKey(run) { return "cosa-eval-view/marks/" + run; }
  function marksOf(run) {
    if (!marks[run]) {
      var saved = null;
      try { saved = JSON.parse(window.localStorage.getItem(storeKey(run)) || "null"); } catch (e) { saved = null; }
      marks[run] = saved && typeof saved === "object" ? saved : {};
    }
    return marks[run];
  }
  function saveMarks(run) {
    try { window.localStorage.setItem(storeKey(run), JSON.stringify(marksOf(run))); }
    catch (e) { status("could not save marks in this browser's storage: " + e.message); }
  }
  function markOf(row) { return marksOf(row.run)[row.sample_id] || null; }
  function isEmptyMark(m) { return m.rating === null && m.compliant === null && m.categories === null && !m.note; }
  function setMark(row, mark) {
    var all = marksOf(row.run);
    if (!mark || isEmptyMark(mark)) delete all[row.sample_id]; else all[row.sample_id] = mark;
    saveMarks(row.run);
  }
  function markText(m) {
    if (!m) return "";
    var parts = [];
    if (m.rating !== null) parts.push("r" + m.rating);
    if (m.compliant !== null) parts.push(m.compliant ? "compliant" : "not compliant");
    if (m.categories !== null) parts.push(m.categories.length ? m.categories.length + " cat." : "no cat.");
    if (m.note) parts.push("note");
    return "\u2713 " + parts.join(" \u00b7 ");
  }

  /* ---- CSV (RFC 4180) ---- */
  function csvCell(v) { v = v == null ? "" : String(v); return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
  function parseCsv(text) {
    var out = [], rowv = [], cell = "", i = 0, quoted = false;
    if (text.charCodeAt(0) === 0xfeff) i = 1;
    for (; i < text.length; i++) {
      var c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { rowv.push(cell); cell = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        rowv.push(cell); out.push(rowv); rowv = []; cell = "";
      } else cell += c;
    }
    if (cell !== "" || rowv.length) { rowv.push(cell); out.push(rowv); }
    return out;
  }
  var COLUMNS = ["sample_id", "rating", "compliant", "categories", "annotator", "note"];
  function labelsCsv(run) {
    var all = marksOf(run), lines = [COLUMNS.join(",")], skipped = 0;
    Object.keys(all).sort().forEach(function (sid) {
      var m = all[sid];
      if (m.rating === null && m.compliant === null && m.categories === null) { skipped++; return; }
      lines.push([sid, m.rating === null ? "" : m.rating, m.compliant === null ? "" : (m.compliant ? "yes" : "no"),
                  m.categories === null ? "" : (m.categories.length ? m.categories.join(";") : "none"),
                  m.annotator || "", m.note || ""].map(csvCell).join(","));
    });
    return {text: lines.join("\n") + "\n", rows: lines.length - 1, skipped: skipped};
  }
  function categoryName(given) {
    var low = given.trim().toLowerCase();
    for (var i = 0; i < D.categories.length; i++) {
      var c = D.categories[i];
      if (c.toLowerCase() === low || c.replace(/[^A-Za-z]+/g, "_").toLowerCase() === low.replace(/[^a-z]+/g, "_")) return c;
    }
    return null;
  }
  function loadLabels(run, text) {
    var table = parseCsv(text), head = table.shift() || [], at = {}, loaded = 0, unknown = 0, bad = [];
    head.forEach(function (name, i) { at[name.trim()] = i; });
    table.forEach(function (cells, n) {
      function get(name) { return at[name] === undefined ? "" : (cells[at[name]] || "").trim(); }
      if (!cells.join("").trim()) return;
      var sid = get("sample_id") || [get("benchmark"), get("variant"), get("config_id"), get("doc_id")].join("/");
      var row = (BY_RUN[run] || {})[sid];
      if (!row) { unknown++; return; }
      var rating = get("rating"), compliant = get("compliant").toLowerCase(), cats = get("categories");
      var mark = {rating: rating === "" ? null : parseInt(rating, 10), annotator: get("annotator"), note: get("note"),
                  compliant: compliant === "" ? null : ["yes", "y", "true", "1"].indexOf(compliant) >= 0,
                  categories: null};
      if (cats !== "") {
        mark.categories = cats.toLowerCase() === "none" ? [] : cats.split(";").map(categoryName).filter(Boolean);
      }
      if (mark.rating !== null && !(mark.rating >= 0 && mark.rating <= 5)) { bad.push(n + 2); return; }
      setMark(row, mark);
      loaded++;
    });
    return "loaded " + loaded + " mark" + (loaded === 1 ? "" : "s") + (unknown ? "; " + unknown + " rows not in this run" : "") +
      (bad.length ? "; rows with a bad rating skipped: " + bad.join(", ") : "");
  }

  /* ---- columns, filters, sorting ---- */
  function verdicts(r) { return LABELS.map(function (l) { return r.v[l]; }).filter(Boolean); }
  function maxAttempts(r) {
    var most = 0;
    verdicts(r).forEach(function (v) { Object.keys(v.attempts).forEach(function (k) { most = Math.max(most, v.attempts[k]); }); });
    return most || null;
  }
  var COLS = [
    {t: "#", w: "3.5rem", get: function (r) { return r.id; }},
    {t: "model", w: "minmax(7rem,1fr)", get: function (r) { return (RUNS[r.run] || {}).label || r.model; }},
    {t: "benchmark", w: "7.5rem", get: function (r) { return r.benchmark; }},
    {t: "config", w: "minmax(8rem,1fr)", get: function (r) { return r.config_id; }},
    {t: "mode/type", w: "7rem", get: function (r) { return r.kind; }},
    {t: "prompt", w: "minmax(10rem,2fr)", get: function (r) { return r.prompt; }, text: true},
    {t: "response", w: "minmax(10rem,2fr)", get: function (r) { return r.response; }, text: true}
  ];
  LABELS.forEach(function (l) {
    COLS.push({t: l + ": rating", w: "5rem", get: function (r) { return r.v[l] ? r.v[l].rating : null; }, show: num});
    COLS.push({t: l + ": safe", w: "4rem", get: function (r) { return r.v[l] ? r.v[l].is_safe : null; }, show: yesNo});
    COLS.push({t: l + ": outcome", w: "7.5rem", get: function (r) { return r.v[l] ? r.v[l].outcome : null; }, badge: true});
  });
  COLS.push({t: "failure", w: "6rem", get: function (r) {
    return verdicts(r).map(function (v) { return v.failure; }).filter(Boolean).join(", ") || null; }});
  COLS.push({t: "attempts", w: "4.5rem", get: maxAttempts});
  COLS.push({t: "mark", w: "7rem", get: function (r) { return markText(markOf(r)) || null; }});

  function hay(r) {
    if (hays[r.id] === undefined) {
      var parts = [r.model, r.sample_id, r.config_id, r.kind, r.prompt, r.response];
      verdicts(r).forEach(function (v) {
        Object.keys(v.texts).forEach(function (k) { parts.push(v.texts[k].join("\n")); });
      });
      hays[r.id] = parts.join("\n").toLowerCase();
    }
    return hays[r.id];
  }
  function outcomeMatch(v, want) { return v.outcome === want || (want === "refused" && v.outcome === "over-refusal"); }
  function passes(r) {
    var f = state.f;
    if (f.model && r.run !== f.model) return false;
    if (f.benchmark && r.benchmark !== f.benchmark) return false;
    if (f.config && r.config_id !== f.config) return false;
    if (f.kind && r.kind !== f.kind) return false;
    if (f.outcome && !verdicts(r).some(function (v) { return outcomeMatch(v, f.outcome); })) return false;
    if (f.marked && (f.marked === "marked") !== !!markOf(r)) return false;
    return !state.q || hay(r).indexOf(state.q) >= 0;
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b));
  }
  function recompute(keepScroll) {
    var order = [];
    for (var i = 0; i < ROWS.length; i++) if (passes(ROWS[i])) order.push(i);
    if (state.sort) {
      var col = COLS[state.sort.col], dir = state.sort.dir;
      order.sort(function (a, b) {
        var va = col.get(ROWS[a]), vb = col.get(ROWS[b]);
        if (va === null || va === undefined || vb === null || vb === undefined) return compare(va, vb);
        return dir * compare(va, vb) || a - b;
      });
    }
    state.order = order;
    state.selected = Math.min(state.selected, order.length - 1);
    ui.count.textContent = order.length + " of " + ROWS.length + " responses";
    if (!keepScroll) ui.body.scrollTop = 0;
    drawRows();
    if (state.view === "dis") { if (!keepScroll) state.shown = PAGE; drawGroups(); }
  }

  /* ---- the table (virtual: a pool of row elements moved over a tall spacer) ---- */
  var pool = [];
  function gridTemplate() { return COLS.map(function (c) { return c.w; }).join(" "); }
  function drawHead() {
    COLS.forEach(function (c, i) {
      var h = el("div", "cell", c.t);
      h.setAttribute("role", "columnheader");
      h.title = "sort by " + c.t;
      h.addEventListener("click", function () {
        state.sort = state.sort && state.sort.col === i ? {col: i, dir: -state.sort.dir} : {col: i, dir: 1};
        Array.prototype.forEach.call(ui.head.children, function (other, k) {
          if (k === i) other.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
          else other.removeAttribute("aria-sort");
        });
        recompute();
      });
      ui.head.appendChild(h);
    });
  }
  function fillRow(d, pos) {
    var r = ROWS[state.order[pos]];
    d.dataset.id = r.id;
    d.dataset.pos = pos;
    d.classList.toggle("selected", pos === state.selected);
    d.classList.toggle("open", r.id === state.open);
    d.style.transform = "translateY(" + pos * ROW_H + "px)";
    COLS.forEach(function (c, i) {
      var v = c.get(r), cell = d.children[i];
      cell.textContent = c.show ? c.show(v) : c.text ? line(v, 160) : (v === null || v === undefined ? "\u2014" : String(v));
      cell.className = "cell" + (c.badge && v ? " badge o-" + v.replace(/[^a-z]/g, "") : "");
    });
  }
  function drawRows() {
    var body = ui.body, n = state.order.length;
    ui.spacer.style.height = n * ROW_H + "px";
    var first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - 8);
    var last = Math.min(n, Math.ceil((body.scrollTop + (body.clientHeight || 600)) / ROW_H) + 8);
    while (pool.length < last - first) {
      var d = el("div", "row");
      d.setAttribute("role", "row");
      d.style.gridTemplateColumns = gridTemplate();
      COLS.forEach(function () { d.appendChild(el("div", "cell")); });
      ui.spacer.appendChild(d);
      pool.push(d);
    }
    pool.forEach(function (d, k) {
      d.hidden = first + k >= last;
      if (!d.hidden) fillRow(d, first + k);
    });
    ui.empty.hidden = n > 0;
  }
  function select(pos, open) {
    if (!state.order.length) return;
    pos = Math.max(0, Math.min(state.order.length - 1, pos));
    state.selected = pos;
    var body = ui.body, top = pos * ROW_H;
    if (top < body.scrollTop) body.scrollTop = top;
    else if (top + ROW_H > body.scrollTop + body.clientHeight) body.scrollTop = top + ROW_H - body.clientHeight;
    if (open || state.open !== null) openDetail(ROWS[state.order[pos]].id);
    drawRows();
  }

  /* ---- the detail pane ---- */
  function section(title) { var s = el("section", "part"); s.appendChild(el("h3", null, title)); return s; }
  function pre(text) {
    var p = el("pre", "text");
    text = String(text == null ? "" : text);
    if (text.length <= LONG) { p.textContent = text; return p; }
    p.textContent = text.slice(0, LONG);
    var wrap = el("div"), more = el("button", "more", "show all " + text.length.toLocaleString() + " characters");
    more.addEventListener("click", function () { p.textContent = text; wrap.removeChild(more); });
    return add(wrap, p, more);
  }
  function facts(pairs) {
    var dl = el("dl", "facts");
    pairs.forEach(function (p) { if (p[1] !== null && p[1] !== undefined && p[1] !== "") add(dl, el("dt", null, p[0]), el("dd", null, p[1])); });
    return dl;
  }
  function verdictFacts(v) {
    return facts([["outcome", v.outcome], ["rating", num(v.rating)], ["helpful", yesNo(v.is_helpful)], ["safe", yesNo(v.is_safe)],
                  ["compliant", v.compliant === null ? null : yesNo(v.compliant)],
                  ["categories", v.flagged === null ? null : (v.flagged.join("; ") || "none")],
                  ["violated", v.violated.length ? v.violated.join("; ") : null],
                  ["failure", v.failure ? v.failure + (v.failure_detail ? ": " + v.failure_detail : "") : null],
                  ["attempts", Object.keys(v.attempts).map(function (k) { return k + " " + v.attempts[k]; }).join(", ")],
                  ["parsers", v.parsers_disagree.length ? "the other parser reads " + v.parsers_disagree.join(", ") + " differently" : null]]);
  }
  function verdictPart(label, v) {
    var s = section(label);
    s.appendChild(verdictFacts(v));
    if (v.members) {
      var t = el("table", "members");
      add(t, add(el("tr"), el("th", null, "member"), el("th", null, "outcome"), el("th", null, "rating"), el("th", null, "safe"), el("th", null, "failure")));
      Object.keys(v.members).forEach(function (name) {
        var m = v.members[name];
        add(t, add(el("tr"), el("td", null, name), el("td", null, m.outcome), el("td", null, num(m.rating)), el("td", null, yesNo(m.is_safe)), el("td", null, m.failure || "")));
      });
      s.appendChild(t);
    }
    var rubrics = Object.keys(v.texts);
    if (!rubrics.length) s.appendChild(el("p", "meta", "no judge text found in the cache for this verdict"));
    rubrics.forEach(function (rubric) {
      v.texts[rubric].forEach(function (text, i) {
        s.appendChild(el("h4", null, rubric + (v.texts[rubric].length > 1 ? " (attempt " + (i + 1) + ")" : "")));
        s.appendChild(pre(text));
      });
    });
    Object.keys(v.raw).forEach(function (rubric) {
      s.appendChild(el("h4", null, rubric + ": last unreadable answer"));
      s.appendChild(pre(v.raw[rubric]));
    });
    return s;
  }
  function markForm(r) {
    var s = section("Your verdict"), m = markOf(r) || {rating: null, compliant: null, categories: null, note: ""};
    s.classList.add("adjudicate");
    var rating = el("select"); rating.id = "mark-rating";
    add(rating, el("option", null, "\u2014"));
    for (var k = 0; k <= 5; k++) { var o = el("option", null, k); o.value = String(k); rating.appendChild(o); }
    rating.value = m.rating === null ? "\u2014" : String(m.rating);
    add(s, add(el("label"), el("span", null, "rating (0\u20135) "), rating));
    var compliant = null, cats = [], labelCats = null;
    if (r.schema === "cosapien") {
      compliant = el("select"); compliant.id = "mark-compliant";
      ["\u2014", "yes", "no"].forEach(function (t) { add(compliant, el("option", null, t)); });
      compliant.value = m.compliant === null ? "\u2014" : m.compliant ? "yes" : "no";
      add(s, add(el("label"), el("span", null, "complies with the config "), compliant));
    } else {
      labelCats = el("input"); labelCats.type = "checkbox"; labelCats.id = "mark-label-categories";
      labelCats.checked = m.categories !== null;
      add(s, add(el("label"), labelCats, el("span", null, " label risk categories (none ticked = none present)")));
      var box = el("div", "cats");
      D.categories.forEach(function (c) {
        var cb = el("input"); cb.type = "checkbox"; cb.value = c; cb.checked = !!(m.categories && m.categories.indexOf(c) >= 0);
        cb.addEventListener("change", function () { if (cb.checked) labelCats.checked = true; });
        cats.push(cb);
        add(box, add(el("label", "cat"), cb, el("span", null, " " + c + (r.allowed.indexOf(c) >= 0 ? " (allowed)" : ""))));
      });
      s.appendChild(box);
    }
    var note = el("textarea"); note.id = "mark-note"; note.rows = 3; note.value = m.note || "";
    add(s, add(el("label", "note"), el("span", null, "note"), note));
    function current() {
      return {rating: rating.value === "\u2014" ? null : parseInt(rating.value, 10),
              compliant: compliant ? (compliant.value === "\u2014" ? null : compliant.value === "yes") : null,
              categories: labelCats && labelCats.checked ? cats.filter(function (c) { return c.checked; }).map(function (c) { return c.value; }) : null,
              note: note.value.trim(), annotator: ui.annotator.value.trim()};
    }
    var save = el("button", "primary", "save mark"); save.id = "mark-save";
    save.addEventListener("click", function () { setMark(r, current()); status("marked " + r.sample_id); refreshMarks(); });
    var drop = el("button", null, "clear mark"); drop.id = "mark-clear";
    drop.addEventListener("click", function () { setMark(r, null); status("cleared " + r.sample_id); refreshMarks(); openDetail(r.id); });
    var buttons = add(el("div", "buttons"), save, drop);
    LABELS.forEach(function (l) {
      var v = r.v[l];
      if (!v || v.outcome === "invalid") return;
      var copy = el("button", null, "take " + l + "\u2019s verdict");
      copy.addEventListener("click", function () {
        if (v.rating !== null) rating.value = String(Math.round(v.rating));
        if (compliant && v.compliant !== null) compliant.value = v.compliant ? "yes" : "no";
        if (labelCats && v.flagged !== null) { labelCats.checked = true; cats.forEach(function (c) { c.checked = v.flagged.indexOf(c.value) >= 0; }); }
      });
      buttons.appendChild(copy);
    });
    s.appendChild(buttons);
    return s;
  }
  function openDetail(id) {
    var r = ROWS[id], pane = ui.detail;
    state.open = id;
    clear(pane);
    pane.hidden = false;
    document.body.classList.add("with-detail");
    var close = el("button", "close", "\u00d7"); close.title = "close (Esc)";
    close.addEventListener("click", closeDetail);
    add(pane, add(el("div", "detail-head"), el("h2", null, ((RUNS[r.run] || {}).label || r.model) + " \u00b7 " + r.sample_id), close));
    pane.appendChild(markForm(r));
    pane.appendChild(add(section("Sample"), facts([["task", r.task], ["benchmark", r.benchmark + " / " + r.variant],
      ["config", r.config_id + " (" + r.config_group + ")"], ["mode/type", r.kind], ["doc_id", r.doc_id],
      ["allowed categories", r.allowed.length ? r.allowed.join("; ") : null], ["everything asked allowed", yesNo(r.fully_allowed)]])));
    pane.appendChild(add(section("Prompt"), pre(r.prompt)));
    pane.appendChild(add(section("Response"), pre(r.response)));
    LABELS.forEach(function (l) { if (r.v[l]) pane.appendChild(verdictPart("Judge: " + l, r.v[l])); });
    pane.appendChild(add(section("Config (system prompt)"), pre(D.configs[r.config])));
    pane.scrollTop = 0;
    drawRows();
  }
  function closeDetail() {
    state.open = null;
    ui.detail.hidden = true;
    document.body.classList.remove("with-detail");
    drawRows();
  }
  function refreshMarks() {
    if (state.f.marked) recompute(true);
    else { drawRows(); if (state.view === "dis") drawGroups(); }
  }
  function status(text) { ui.status.textContent = text; }

  /* ---- disagreements: per prompt, runs across, judges down ---- */
  function groupPasses(g) {
    if (state.f.dkind && g.kinds.indexOf(state.f.dkind) < 0) return false;
    return g.rows.some(function (id) { return passes(ROWS[id]); });
  }
  function drawGroups() {
    clear(ui.dis);
    state.groups = D.disagreements.filter(groupPasses);
    ui.count.textContent = state.groups.length + " of " + D.disagreements.length + " disagreements";
    state.groups.slice(0, state.shown).forEach(function (g, n) {
      var card = el("article", "group" + (n === state.group ? " selected" : ""));
      card.dataset.sample = g.sample_id;
      var first = ROWS[g.rows[0]], head = add(el("div", "group-head"), el("h3", null, g.sample_id));
      g.kinds.forEach(function (k) { head.appendChild(el("span", "kind", k)); });
      add(card, head, el("p", "prompt", short(first.prompt, 400)));
      var table = el("table", "side"), top = el("tr");
      top.appendChild(el("th", null, ""));
      g.rows.forEach(function (id) {
        var r = ROWS[id], th = el("th");
        add(th, el("div", null, (RUNS[r.run] || {}).label || r.model), el("div", "response", short(r.response, 300)));
        var open = el("button", "open", "open"); open.addEventListener("click", function () { openDetail(id); });
        th.appendChild(open);
        top.appendChild(th);
      });
      table.appendChild(top);
      LABELS.forEach(function (l) {
        var names = {};
        g.rows.forEach(function (id) { var v = ROWS[id].v[l]; if (v && v.members) Object.keys(v.members).forEach(function (m) { names[m] = 1; }); });
        [null].concat(Object.keys(names)).forEach(function (member) {
          var tr = add(el("tr"), el("th", null, member ? l + " \u25b8 " + member : l)), any = false;
          g.rows.forEach(function (id) {
            var v = ROWS[id].v[l], m = v && member ? (v.members || {})[member] : v, td = el("td");
            if (m) {
              any = true;
              add(td, el("span", "badge o-" + m.outcome.replace(/[^a-z]/g, ""), m.outcome),
                  el("span", "meta", " rating " + num(m.rating) + " \u00b7 safe " + yesNo(m.is_safe)));
            }
            tr.appendChild(td);
          });
          if (any) table.appendChild(tr);
        });
      });
      card.appendChild(table);
      ui.dis.appendChild(card);
    });
    if (state.groups.length > state.shown) {
      var more = el("button", "more", "show " + Math.min(PAGE, state.groups.length - state.shown) + " more");
      more.id = "more-groups";
      more.addEventListener("click", function () { state.shown += PAGE; drawGroups(); });
      ui.dis.appendChild(more);
    }
    if (!state.groups.length) ui.dis.appendChild(el("p", "meta", "no disagreement under these filters"));
  }
  function moveGroup(step) {
    if (!state.groups.length) return;
    state.group = Math.max(0, Math.min(state.groups.length - 1, state.group + step));
    if (state.group >= state.shown) state.shown = state.group + 1;
    drawGroups();
    var card = ui.dis.children[state.group];
    if (card && card.scrollIntoView) card.scrollIntoView({block: "nearest"});
  }

  /* ---- page skeleton ---- */
  function options(select, label, values, names) {
    var blank = el("option", null, label);
    blank.value = "";
    select.appendChild(blank);
    values.forEach(function (v, i) { var o = el("option", null, names ? names[i] : v); o.value = v; select.appendChild(o); });
    return select;
  }
  function distinct(key) {
    var seen = {};
    ROWS.forEach(function (r) { if (r[key] !== "") seen[r[key]] = 1; });
    return Object.keys(seen).sort();
  }
  function filter(name, label, values, names) {
    var s = options(el("select"), label, values, names);
    s.id = "f-" + name;
    s.setAttribute("aria-label", label);
    s.addEventListener("change", function () { state.f[name] = s.value; recompute(); });
    return s;
  }
  function setView(view) {
    state.view = view;
    ui.tabRows.setAttribute("aria-selected", String(view === "rows"));
    ui.tabDis.setAttribute("aria-selected", String(view === "dis"));
    ui.table.hidden = view !== "rows";
    ui.dis.hidden = view !== "dis";
    ui.dkind.hidden = view !== "dis";
    recompute();
  }
  function build() {
    var body = document.body;
    var head = add(el("header"), el("h1", null, D.title));
    var judges = LABELS.length, runs = D.runs.length;
    head.appendChild(el("p", "meta", ROWS.length + " responses \u00b7 " + runs + " run" + (runs === 1 ? "" : "s") + " \u00b7 " +
      judges + " judge setting" + (judges === 1 ? "" : "s") + " (" + LABELS.join(", ") + ") \u00b7 " + D.disagreements.length + " disagreements"));
    D.sources.forEach(function (s) { s.notes.forEach(function (n) { head.appendChild(el("p", "warning", s.label + " (" + s.folder + "): " + n)); }); });
    var tools = el("div", "tools");
    ui.tabRows = el("button", "tab", "responses"); ui.tabRows.id = "tab-rows";
    ui.tabDis = el("button", "tab", "disagreements (" + D.disagreements.length + ")"); ui.tabDis.id = "tab-dis";
    ui.tabRows.addEventListener("click", function () { setView("rows"); });
    ui.tabDis.addEventListener("click", function () { setView("dis"); });
    ui.search = el("input"); ui.search.id = "search"; ui.search.type = "search";
    ui.search.placeholder = "search prompts, responses, rationales (/)";
    ui.search.addEventListener("input", function () { state.q = ui.search.value.trim().toLowerCase(); recompute(); });
    ui.dkind = filter("dkind", "any disagreement", D.kinds);
    add(tools, ui.tabRows, ui.tabDis, ui.search,
        filter("model", "all runs", D.runs.map(function (r) { return r.key; }), D.runs.map(function (r) { return r.label; })),
        filter("benchmark", "all benchmarks", distinct("benchmark")), filter("config", "all configs", distinct("config_id")),
        filter("kind", "all modes/types", distinct("kind")), filter("outcome", "any outcome", D.outcomes),
        filter("marked", "marked or not", ["marked", "unmarked"]), ui.dkind);
    ui.count = el("span", "count");
    tools.appendChild(ui.count);
    var adj = el("div", "tools adjudication");
    ui.run = el("select");
    ui.run.setAttribute("aria-label", "run to export or load labels for");
    D.runs.forEach(function (r) { var o = el("option", null, r.label); o.value = r.key; ui.run.appendChild(o); });
    ui.run.id = "run";
    ui.annotator = el("input"); ui.annotator.id = "annotator"; ui.annotator.placeholder = "annotator";
    try { ui.annotator.value = window.localStorage.getItem("cosa-eval-view/annotator") || ""; } catch (e) { /* no storage */ }
    ui.annotator.addEventListener("change", function () {
      try { window.localStorage.setItem("cosa-eval-view/annotator", ui.annotator.value.trim()); } catch (e) { /* no storage */ }
    });
    var exp = el("button", null, "export labels CSV"); exp.id = "export";
    exp.addEventListener("click", function () {
      var run = RUNS[ui.run.value], csv = labelsCsv(run.key), a = el("a");
      a.href = URL.createObjectURL(new Blob([csv.text], {type: "text/csv"}));
      a.download = "labels_" + run.label.replace(/[^A-Za-z0-9._-]+/g, "_") + ".csv";
      document.body.appendChild(a); a.click(); document.body.removeChild(a);
      status("exported " + csv.rows + " labels" + (csv.skipped ? " (" + csv.skipped + " notes without a verdict left out)" : ""));
    });
    var imp = el("input"); imp.type = "file"; imp.id = "import"; imp.accept = ".csv,text/csv";
    imp.addEventListener("change", function () {
      var file = imp.files[0], reader = new FileReader();
      if (!file) return;
      reader.onload = function () { status(loadLabels(ui.run.value, String(reader.result))); imp.value = ""; refreshMarks(); };
      reader.readAsText(file);
    });
    ui.status = el("span", "status"); ui.status.id = "mark-status"; ui.status.setAttribute("role", "status");
    add(adj, el("span", "meta", "adjudication:"), ui.run, ui.annotator, exp, add(el("label", "load"), el("span", null, "load labels CSV "), imp), ui.status);
    ui.table = el("div", "table"); ui.table.setAttribute("role", "table");
    ui.head = el("div", "row head"); ui.head.style.gridTemplateColumns = gridTemplate();
    ui.body = el("div", "body"); ui.body.id = "rows"; ui.body.tabIndex = 0;
    ui.spacer = el("div", "spacer");
    ui.empty = el("p", "meta", "no response matches these filters");
    add(ui.table, ui.head, add(ui.body, ui.spacer), ui.empty);
    ui.body.addEventListener("scroll", drawRows);
    ui.body.addEventListener("click", function (e) {
      var row = e.target.closest(".row");
      if (row && row.dataset.pos !== undefined) select(parseInt(row.dataset.pos, 10), true);
    });
    ui.dis = el("div", "dis"); ui.dis.id = "disagreements";
    ui.detail = el("aside", "detail"); ui.detail.id = "detail"; ui.detail.hidden = true;
    add(body, head, tools, adj, add(el("main"), ui.table, ui.dis), ui.detail);
    drawHead();
    window.addEventListener("resize", drawRows);
    document.addEventListener("keydown", onKey);
    setView("rows");
  }
  function onKey(e) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
    if (e.key === "Escape") { if (typing) e.target.blur(); else closeDetail(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    var dis = state.view === "dis";
    if (e.key === "j") dis ? moveGroup(1) : select(state.selected + 1, false);
    else if (e.key === "k") dis ? moveGroup(-1) : select(state.selected - 1, false);
    else if (e.key === "Enter") {
      if (dis && state.groups[state.group]) openDetail(state.groups[state.group].rows[0]);
      else if (!dis && state.selected >= 0) select(state.selected, true);
    } else if (e.key === "/") ui.search.focus();
    else return;
    e.preventDefault();
  }
  build();
  window.cosaView = {ready: performance.now(), labelsCsv: labelsCsv};
  document.body.dataset.ready = "1";
})();
