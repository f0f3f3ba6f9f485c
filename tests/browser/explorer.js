// explorer.js: drives Debian's chromium (headless, through puppeteer-core; no browser is downloaded) over a page
// made by build/bin/export-notebook, and reports what a reader would see as JSON on stdout. The values are checked
// against the trace's .npy files by tests/reference/check_explorer.py (tests/test_page_explorer.sh runs both).
//
//   node tests/browser/explorer.js PAGE.html SHOT_PREFIX [LAYER HEAD]   (default layer 3, head 2)
//
// What it does, as a reader would: opens the page from file:// with every network request blocked and counted,
// records console errors and uncaught exceptions; in chapter 14's attention explorer clicks the layer button LAYER,
// then presses ArrowRight HEAD times (head 0 -> HEAD), hovers the cell (last query, key 0) and reads the tooltip,
// clicks that row and reads the bars; in chapter 19's logit-lens grid hovers the cell (last layer, last position)
// and reads the tooltip's five tokens; saves a screenshot of each with its tooltip showing, SHOT_PREFIX_attention.png
// and SHOT_PREFIX_lens.png. Exit 0 when it could do all that (the
// checks of the values are the Python side's), 1 otherwise. CHROMIUM overrides /usr/bin/chromium.
"use strict";
const fs = require("fs");
const {openPage} = require("./open_page");

async function main() {
  const [pagePath, shot, layerArg, headArg] = process.argv.slice(2);
  if (!pagePath || !shot) throw new Error("usage: explorer.js PAGE.html SHOT_PREFIX [LAYER HEAD]");
  const layer = Number(layerArg || 3), head = Number(headArg || 2);
  const out = {};
  const {page, close} = await openPage(pagePath, out);
  try {
    out.lang = await page.$eval("html", h => h.lang);
    out.bytes = fs.statSync(pagePath).size;

    // ---- chapter 14: the attention explorer ----
    const att = await page.$('div.explorer[data-kind="attention"][data-ready="1"]');
    if (att) {
      await att.scrollIntoView();
      await page.click(`div.explorer[data-kind="attention"] button.ex-layer[data-index="${layer}"]`);
      await page.focus('div.explorer[data-kind="attention"]');
      for (let i = 0; i < head; i++) await page.keyboard.press("ArrowRight");
      const state = await page.$eval('div.explorer[data-kind="attention"]', e => ({layer: e.dataset.layer, head: e.dataset.head}));
      const T = await page.$$eval('div.explorer[data-kind="attention"] .ex-map .row', rows => rows.length);
      const q = T - 1, k = 0;
      const cell = `div.explorer[data-kind="attention"] .ex-cell[data-q="${q}"][data-k="${k}"]`;
      await page.hover(cell);
      const tip = await page.$eval('div.explorer[data-kind="attention"] .ex-tip', t => ({
        hidden: t.hidden, text: t.textContent,
        query: (t.querySelector(".tip-q") || {}).textContent, key: (t.querySelector(".tip-k") || {}).textContent,
        weight: (t.querySelector(".tip-w") || {}).textContent}));
      // a masked cell says so
      await page.hover(`div.explorer[data-kind="attention"] .ex-cell[data-q="0"][data-k="1"]`);
      const masked = await page.$eval('div.explorer[data-kind="attention"] .ex-tip', t => (t.querySelector(".tip-masked") || {}).textContent || null);
      await page.click(cell);
      const bars = await page.$$eval('div.explorer[data-kind="attention"] .ex-bar', rows =>
        rows.map(r => ({k: Number(r.dataset.k), w: r.querySelector(".val").textContent, token: r.querySelector(".ex-tok").textContent,
                        width: r.querySelector(".fill").style.width})));
      const precision = await page.$eval('div.explorer[data-kind="attention"] .ex-precision', p => p.textContent).catch(() => null);
      out.attention = {state, T, q, k, tooltip: tip, masked_tooltip: masked, bars, precision};
      await page.hover(cell);
      await page.screenshot({path: shot + "_attention.png"});
    }

    // ---- chapter 19: the logit lens grid ----
    const lens = await page.$('div.explorer[data-kind="lens"][data-ready="1"]');
    if (lens) {
      await lens.scrollIntoView();
      const dims = await page.$$eval('div.explorer[data-kind="lens"] td.ex-cell', cells =>
        ({layers: 1 + Math.max(...cells.map(c => Number(c.dataset.layer))), T: 1 + Math.max(...cells.map(c => Number(c.dataset.pos)))}));
      const l = dims.layers - 1, t = dims.T - 1;
      const cell = `div.explorer[data-kind="lens"] td.ex-cell[data-layer="${l}"][data-pos="${t}"]`;
      const shownTop1 = await page.$eval(cell, c => c.textContent);
      await page.hover(cell);
      const tip = await page.$eval('div.explorer[data-kind="lens"] .ex-tip', box => ({
        hidden: box.hidden, text: box.textContent,
        top: [...box.querySelectorAll(".tip-top")].map(x => ({id: Number(x.dataset.id), token: x.querySelector(".tip-tok").textContent,
                                                               p: x.querySelector(".tip-p").textContent}))}));
      out.lens = {layer: l, pos: t, dims, cell_text: shownTop1, tooltip: tip};
      await page.screenshot({path: shot + "_lens.png"});
    }
  } finally {
    await close();
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
}

main().catch(err => { console.error("explorer.js: " + (err && err.stack || err)); process.exit(1); });
