// map.js: drives Debian's chromium (headless, through puppeteer-core; no browser is downloaded) over a page made by
// build/bin/export-notebook and follows the map at its top (the inline SVG of common/draw/diagram.c) as a reader
// would: for every chapter the map links, it scrolls back to the top, finds a box or chapter pill that links it,
// checks that this link is what is under its label (not covered by another box), clicks it there with the mouse, and
// records where the page went: location.hash and the top of the chapter's section in the viewport. Then, from the
// chapter, it clicks the chapter's small map (where.png), which leads back to the map. Prints the report as JSON on
// stdout; tests/reference/check_map.py --nav checks it against the page's chapters.
//
//   node tests/browser/map.js PAGE.html SHOT.png     (SHOT.png: the top of the page, the map in view)
//
// Every network request is blocked and counted. Exit 0 when it could do all that (the checks are the Python side's),
// 1 otherwise. CHROMIUM overrides /usr/bin/chromium.
"use strict";
const fs = require("fs");
const {openPage} = require("./open_page");

async function main() {
  const [pagePath, shot] = process.argv.slice(2);
  if (!pagePath || !shot) throw new Error("usage: map.js PAGE.html SHOT.png");
  const out = {links: [], back: []};
  const {page, close} = await openPage(pagePath, out);
  try {
    out.sections = await page.$$eval("section.chapter", s => s.map(e => e.id));
    out.maps = await page.$$eval("svg.map", s => s.length);
    const hrefs = await page.$$eval("svg.map a.map-link", as => [...new Set(as.map(a => a.getAttribute("href")))]);
    await page.$eval("svg.map", m => m.scrollIntoView());
    await page.screenshot({path: shot});

    for (const href of hrefs) {
      await page.evaluate(() => { history.replaceState(null, "", location.pathname); window.scrollTo(0, 0); });
      // the first link to this chapter whose label is really what the mouse would hit
      const target = await page.evaluate(async href => {
        const links = [...document.querySelectorAll(`svg.map a.map-link[href="${href}"]`)];
        for (const a of links) {
          const text = a.querySelector("text.b") || a.querySelector("text");  // the box's label, else a pill's number
          if (!text) continue;
          text.scrollIntoView({block: "center"});
          await new Promise(r => requestAnimationFrame(r));
          const r = text.getBoundingClientRect();
          const x = r.left + r.width / 2, y = r.top + r.height / 2;
          const hit = document.elementFromPoint(x, y);
          if (hit && hit.closest("a") === a) return {x, y, label: text.textContent, tried: links.length};
        }
        return {x: null, y: null, label: null, tried: links.length};
      }, href);
      const rec = {href, label: target.label, links: target.tried, clicked: target.x !== null};
      if (rec.clicked) {
        await page.mouse.click(target.x, target.y);
        await page.waitForFunction(h => location.hash === h, {timeout: 5000}, href).catch(() => {});
        await new Promise(r => setTimeout(r, 50));
        Object.assign(rec, await page.evaluate(href => {
          const sec = document.getElementById(href.slice(1));
          const top = sec ? sec.getBoundingClientRect().top : null;
          const bottom = Math.ceil(window.scrollY + window.innerHeight) >= document.documentElement.scrollHeight - 1;
          return {hash: location.hash, section_top: top, at_bottom: bottom, viewport: window.innerHeight};
        }, href));
      }
      out.links.push(rec);
    }

    // back: a chapter's small map leads to the whole map
    for (const id of out.sections) {
      const sel = `#${id} figure.where a`;
      if (!(await page.$(sel))) continue;
      await page.evaluate(() => history.replaceState(null, "", location.pathname));
      await page.$eval(sel, a => a.scrollIntoView({block: "center"}));
      await page.click(sel);
      await page.waitForFunction(() => location.hash === "#map", {timeout: 5000}).catch(() => {});
      out.back.push(await page.evaluate(id => ({
        id, hash: location.hash, map_top: document.getElementById("map").getBoundingClientRect().top}), id));
    }
  } finally {
    await close();
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
}

main().catch(err => { console.error(String(err && err.stack || err)); process.exit(1); });
