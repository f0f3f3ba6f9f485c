// open_page.js: the one way the browser tests open a page made by build/bin/export-notebook: Debian's chromium
// (CHROMIUM overrides /usr/bin/chromium) headless through puppeteer-core, a fresh profile, a 1280x900 viewport, the
// page from file:// with every network request blocked and recorded (the page itself, its #fragments and data: URIs
// are not network requests), console errors and uncaught exceptions recorded.
//
//   const {browser, page, url, close} = await openPage(pagePath, out);   // out gets requests_blocked, console_errors,
//   ...                                                                  // page_errors (the checkers read them)
//   await close();
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

async function openPage(pagePath, out) {
  const url = "file://" + path.resolve(pagePath);
  Object.assign(out, {url, requests_blocked: [], console_errors: [], page_errors: []});
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "l3t-puppeteer-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const close = async () => {
    await browser.close();
    fs.rmSync(profile, {recursive: true, force: true});
  };
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 900});
    await page.setRequestInterception(true);
    page.on("request", req => {
      const u = req.url();
      if (u === url || u.startsWith(url + "#") || u.startsWith("data:")) req.continue();
      else { out.requests_blocked.push(u); req.abort(); }
    });
    page.on("console", msg => { if (msg.type() === "error") out.console_errors.push(msg.text()); });
    page.on("pageerror", err => out.page_errors.push(String(err)));
    await page.goto(url, {waitUntil: "load"});
    return {browser, page, url, close};
  } catch (err) {
    await close();
    throw err;
  }
}

module.exports = {openPage};
