// The explorer page in a real browser (issue 17): Debian's Chromium, headless, driven by playwright-core.
//   node explorer.test.mjs <folder with explorer.html> <screenshot.png>
// Checks: the page loads without console errors and is ready in under 2 s; moving the chunk slider redraws the
// overlay with another frame; choosing another layer and head changes the map; searching "high" finds the "high"
// neurons; searching a nonsense word finds nothing; the patching section shows every effect of the index. Keeps a
// screenshot.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [folder, screenshot] = process.argv.slice(2);
if (!folder || !screenshot) {
  console.error('usage: node explorer.test.mjs <folder> <screenshot.png>');
  process.exit(2);
}
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('file://' + path.resolve(folder, 'explorer.html'));
  try {
    await page.waitForSelector('body[data-ready="yes"]', { timeout: 20000 });
  } catch (e) {
    const status = await page.evaluate(() => document.getElementById('status').textContent);
    throw new Error(`the page never became ready: ${status} ${errors.join(' | ')}`);
  }
  const readyMs = await page.evaluate(() => window.vlascopeReadyMs);
  console.log(`ready after ${readyMs.toFixed(0)} ms`);
  check(readyMs < 2000, `the page is ready in under 2 s (${readyMs.toFixed(0)} ms)`);

  // The overlay: a camera canvas as the screen shows it, once its frame and map are drawn (an element screenshot:
  // the canvas holds a file:// image, so the page itself may not read its pixels back).
  const canvasId = await page.evaluate(() => document.querySelector('#cameras canvas').id);
  const pixels = async (stamp) => {
    await page.waitForFunction(([id, s]) => document.getElementById(id)?.dataset.drawn === s, [canvasId, stamp]);
    return (await page.locator('#' + canvasId).screenshot()).toString('base64');
  };
  const stamp = () => page.evaluate(() => ['frame', 'stream', 'layer', 'head', 'query'].map((id) => document.getElementById(id).value)
    .reduce((s, v, i) => (i === 0 ? v + ':' : s + v), ''));
  const first = await pixels(await stamp());
  const chunks = await page.evaluate(() => +document.getElementById('frame').max + 1);
  check(chunks > 1, `the episode has several chunks (${chunks})`);
  await page.evaluate(() => { const f = document.getElementById('frame'); f.value = String(Math.min(+f.max, 5)); f.dispatchEvent(new Event('input')); });
  const moved = await pixels(await stamp());
  check(moved !== first, 'the chunk slider changes the overlay');

  await page.selectOption('#layer', { index: 1 });
  await page.selectOption('#head', { index: 2 });
  const otherMap = await pixels(await stamp());
  check(otherMap !== moved, 'choosing another layer and head changes the map');
  await page.selectOption('#stream', 'expert');
  const expertMap = await pixels(await stamp());
  check(expertMap !== otherMap, 'the expert stream has maps of its own');

  await page.fill('#search', 'high');
  const rows = await page.$$eval('#neurons tbody tr', (trs) => trs.map((tr) => tr.cells[1].textContent));
  check(rows.includes('high'), `searching "high" finds the "high" set's neurons (${rows.length} rows)`);
  await page.fill('#search', 'zzzznothing');
  check((await page.$$('#neurons tbody tr')).length === 0, 'a search that matches nothing shows no row');
  await page.fill('#search', 'high');

  // The patching section shows every effect explorer_index.js lists (read here from the file itself).
  const indexText = fs.readFileSync(path.resolve(folder, 'explorer_index.js'), 'utf8');
  const index = JSON.parse(indexText.slice(indexText.indexOf(',') + 1, indexText.lastIndexOf(')')));
  const listed = index.patching.reduce((n, p) => n + p.effects.length, 0);
  const shown = await page.$$eval('#patching tbody tr', (trs) => trs.length);
  check(shown === listed, `the patching section shows its ${listed} effects (${shown} rows)`);
  check(errors.length === 0, `no console errors${errors.length ? ': ' + errors.join(' | ') : ''}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
