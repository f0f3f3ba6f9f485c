// page_explorer.js: the interactive parts of the page export-notebook writes (see page_explorer.h). Compiled into
// build/bin/export-notebook and written inline into the page: no file, no network, works from file://.
//
// Each <div class="explorer" data-kind="attention|lens"> holds its data in <script type="application/json"
// class="explorer-data">:
//   attention: {layers, heads, T, group (query heads per kv head; 0: unknown), tokens [T] (the prompt's pieces),
//               encoding "bf16" (data = base64 of little-endian bf16 bits, [layers][heads][T][T]) | "u8" (steps of
//               1/255) | "none", exact, ui {words in the page's language}}
//   lens:      {layers, T, k, tokens [T], ids [layers * T * k] and probs (best first per cell), vocab {id: text}, ui}
// State is kept in data- attributes of the explorer (data-layer, data-head, data-query) so that it can be read back.
(function () {
  "use strict";

  // ---- helpers ---------------------------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // A token made visible the way the rest of the page shows it: a space as ␣, a newline as ↵, a tab as ⇥.
  function shown(piece) {
    if (piece === "") return "\u2205";
    return piece.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
  }
  function weights(d) {
    const bin = atob(d.data), n = bin.length;
    if (d.encoding === "u8") {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = bin.charCodeAt(i) / 255;
      return out;
    }
    const bits = new Uint32Array(n / 2);  // bf16 is the upper half of a float32
    for (let i = 0; i < n / 2; i++) bits[i] = ((bin.charCodeAt(2 * i + 1) << 8) | bin.charCodeAt(2 * i)) << 16;
    return new Float32Array(bits.buffer);
  }
  const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137],
                   [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
  function viridis(t) {
    t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
    const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
    const c = [0, 1, 2].map(j => Math.round(a[j] + (b[j] - a[j]) * f));
    return {css: "rgb(" + c.join(",") + ")", light: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140};
  }
  // One tooltip per explorer, placed beside the pointer.
  function tooltip(root) {
    const tip = el("div", "ex-tip");
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    root.appendChild(tip);
    return {
      show(ev, fill) {
        tip.textContent = "";
        fill(tip);
        tip.hidden = false;
        const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
        const y = ev.clientY + 16 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 10 : ev.clientY + 16;
        tip.style.left = Math.max(4, x) + "px";
        tip.style.top = Math.max(4, y) + "px";
      },
      hide() { tip.hidden = true; },
    };
  }
  function span(parent, cls, text) { return parent.appendChild(el("span", cls, text)); }

  // ---- chapter 14: every layer and head ------------------------------------------------------------------------
  function attentionExplorer(root, d) {
    if (d.encoding === "none") return;
    const W = weights(d), L = d.layers, H = d.heads, T = d.T, ui = d.ui, digits = d.encoding === "u8" ? 3 : 4;
    const tok = d.tokens.map(shown), tip = tooltip(root);
    let layer = 0, head = 0, query = -1;
    const at = (l, h, q, k) => W[((l * H + h) * T + q) * T + k];

    const controls = el("div", "ex-controls");
    function buttons(label, n, cls, pick, title) {
      const row = el("div", "ex-row");
      span(row, "ex-label", label);
      const list = [];
      for (let i = 0; i < n; i++) {
        const b = el("button", cls, String(i));
        b.type = "button";
        b.dataset.index = String(i);
        if (title) b.title = title(i);
        if (d.group > 1 && cls === "ex-head" && i > 0 && i % d.group === 0) b.classList.add("gap");
        b.addEventListener("click", () => pick(i));
        row.appendChild(b);
        list.push(b);
      }
      controls.appendChild(row);
      return list;
    }
    const layerButtons = buttons(ui.layer, L, "ex-layer", i => { layer = i; draw(); });
    // d.group: query heads per kv head (0 when the trace does not say: then no kv head is named)
    const kvOf = h => (d.group > 0 ? " (" + ui.kv_head + " " + Math.floor(h / d.group) + ")" : "");
    const headButtons = buttons(ui.head, H, "ex-head", i => { head = i; draw(); }, i => kvOf(i).trim());
    root.appendChild(controls);
    const title = root.appendChild(el("div", "ex-title"));
    const wrap = root.appendChild(el("div", "scroll"));
    const map = wrap.appendChild(el("div", "ex-map"));
    map.style.gridTemplateColumns = "auto repeat(" + T + ", 22px)";
    map.appendChild(el("div"));
    for (let k = 0; k < T; k++) {
      const c = map.appendChild(el("div", "lab col", tok[k]));
      c.title = ui.key + " " + k;
    }
    const cells = [], rows = [];
    for (let q = 0; q < T; q++) {
      const r = map.appendChild(el("div", "lab row", tok[q]));
      r.dataset.q = String(q);
      r.addEventListener("click", () => pickQuery(q));
      rows.push(r);
      for (let k = 0; k < T; k++) {
        const c = map.appendChild(el("div", "ex-cell" + (k > q ? " masked" : "")));
        c.dataset.q = String(q);
        c.dataset.k = String(k);
        c.addEventListener("mousemove", ev => tip.show(ev, t => cellTip(t, q, k)));
        c.addEventListener("mouseleave", () => tip.hide());
        c.addEventListener("click", () => pickQuery(q));
        cells.push(c);
      }
    }
    const bars = root.appendChild(el("div", "ex-bars"));

    function cellTip(t, q, k) {
      const w = at(layer, head, q, k);
      span(t, "", ui.layer + " " + layer + " \u00b7 " + ui.head + " " + head + "\n");
      span(t, "", ui.query + " " + q + " ");
      span(t, "tip-q", tok[q]);
      span(t, "", "\n" + ui.key + " " + k + " ");
      span(t, "tip-k", tok[k]);
      span(t, "", "\n");
      if (k > q) span(t, "tip-masked", ui.masked);
      else { span(t, "", ui.weight + " "); span(t, "tip-w", w.toFixed(digits)); }
    }
    function pickQuery(q) {
      query = q;
      draw();
    }
    function drawBars() {
      bars.textContent = "";
      if (query < 0) { bars.appendChild(el("p", "ex-note", ui.click_row)); return; }
      const head_ = el("div", "ex-title");
      head_.textContent = ui.query + " " + query + " " + tok[query] + " " + ui.attends_to + " (" + ui.layer + " " + layer +
                          ", " + ui.head + " " + head + ")";
      bars.appendChild(head_);
      for (let k = 0; k <= query; k++) {
        const w = at(layer, head, query, k), row = el("div", "ex-bar");
        row.dataset.k = String(k);
        row.dataset.w = w.toFixed(digits);
        span(row, "ex-tok", k + " " + tok[k]);
        const track = span(row, "track"), fill = span(track, "fill");
        fill.style.display = "block";
        fill.style.width = (100 * w).toFixed(2) + "%";
        span(row, "val", w.toFixed(digits));
        bars.appendChild(row);
      }
    }
    function draw() {
      root.dataset.layer = String(layer);
      root.dataset.head = String(head);
      root.dataset.query = String(query);
      layerButtons.forEach((b, i) => b.classList.toggle("on", i === layer));
      headButtons.forEach((b, i) => b.classList.toggle("on", i === head));
      title.textContent = ui.layer + " " + layer + " \u00b7 " + ui.head + " " + head + kvOf(head);
      for (let q = 0; q < T; q++) {
        rows[q].classList.toggle("sel", q === query);
        for (let k = 0; k <= q; k++) {
          const c = cells[q * T + k], w = at(layer, head, q, k);
          c.style.background = viridis(w).css;
          c.classList.toggle("sel", q === query);
        }
      }
      drawBars();
    }
    root.addEventListener("keydown", ev => {
      const moves = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]}[ev.key];
      if (!moves) return;
      ev.preventDefault();
      layer = (layer + moves[0] + L) % L;
      head = (head + moves[1] + H) % H;
      draw();
    });
    draw();
  }

  // ---- chapter 19: the logit lens --------------------------------------------------------------------------------
  function lensExplorer(root, d) {
    const ui = d.ui, L = d.layers, T = d.T, K = d.k, tok = d.tokens.map(shown), tip = tooltip(root);
    const name = id => (Object.prototype.hasOwnProperty.call(d.vocab, id) ? shown(d.vocab[id]) : "id " + id);
    const wrap = root.appendChild(el("div", "scroll"));
    const table = wrap.appendChild(el("table", "ex-lens"));
    const head = table.appendChild(el("thead")).appendChild(el("tr"));
    head.appendChild(el("th", "", ui.after_layer));
    for (let t = 0; t < T; t++) head.appendChild(el("th", "", tok[t])).title = ui.position + " " + t;
    const body = table.appendChild(el("tbody"));
    for (let l = 0; l < L; l++) {
      const tr = body.appendChild(el("tr"));
      tr.appendChild(el("th", "", ui.layer + " " + l));
      for (let t = 0; t < T; t++) {
        const base = (l * T + t) * K, p = d.probs[base], col = viridis(p);
        const c = tr.appendChild(el("td", "ex-cell", name(d.ids[base])));
        c.dataset.layer = String(l);
        c.dataset.pos = String(t);
        c.style.background = col.css;
        c.style.color = col.light ? "#1f2328" : "#fff";
        c.addEventListener("mousemove", ev => tip.show(ev, box => {
          span(box, "", ui.layer + " " + l + " \u00b7 " + ui.position + " " + t + " ");
          span(box, "tip-pos", tok[t]);
          span(box, "", "\n" + ui.next_token + ":");
          for (let j = 0; j < K; j++) {
            const line = span(box, "tip-top");
            line.dataset.id = String(d.ids[base + j]);
            span(line, "", "\n" + (j + 1) + ". ");
            span(line, "tip-tok", name(d.ids[base + j]));
            span(line, "", " ");
            span(line, "tip-p", d.probs[base + j].toFixed(4));
          }
          if (t + 1 < T) span(box, "", "\n(" + ui.in_prompt + ": " + tok[t + 1] + ")");
        }));
        c.addEventListener("mouseleave", () => tip.hide());
      }
    }
  }

  document.querySelectorAll("div.explorer").forEach(root => {
    const script = root.querySelector("script.explorer-data");
    if (!script) return;
    const d = JSON.parse(script.textContent);
    if (d.kind === "attention") attentionExplorer(root, d);
    else if (d.kind === "lens") lensExplorer(root, d);
    root.dataset.ready = "1";
  });
})();
