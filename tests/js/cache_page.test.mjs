// The live KV cache page (GET /) in a real browser: Debian chromium, headless, driven by
// playwright-core. The page must draw the whole pool, show blocks in use (and the map changing)
// while completions run, and cached blocks once they are done (the prefix cache is on), with no
// script errors. Screenshots: ${artifactDir}/cache_page_mid.png (under load), cache_page.png (after).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { artifactDir, requirePackage, skip, startServer, synthModel } from './lib/kvcache_server.mjs';

const CHROMIUM = process.env.KVC_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (Debian package 'chromium'; scripts/install-deps.sh installs it)`);
const { chromium } = await requirePackage('playwright-core');

const BLOCKS = 64;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const elapsed = () => `[${((Date.now() - started) / 1000).toFixed(1)} s]`;
let server = null;
// The whole test, however slow the binary (ASan), stays well under CTest's limit.
const watchdog = setTimeout(() => {
  console.error('FAIL: the test did not finish in 240 s');
  server?.proc.kill('SIGKILL');
  process.exit(1);
}, 240_000);

// Loops until `check()` returns a truthy value (returned), or throws `what` after `ms`.
async function until(what, ms, check, everyMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// What the page shows now: each cell's state, the legend, the sequence rows.
function readPage(page) {
  return page.evaluate(() => {
    const cells = [...document.querySelectorAll('#block-map .cell')];
    const n = { free: 0, used: 0, shared: 0, cached: 0 };
    for (const c of cells) n[c.dataset.state] = (n[c.dataset.state] ?? 0) + 1;
    const legend = {};
    for (const k of ['free', 'used', 'shared', 'cached']) legend[k] = Number(document.getElementById(`count-${k}`).textContent);
    const rows = [...document.querySelectorAll('#seq-rows tr[data-seq]')].map((r) => r.dataset.state);
    return {
      cells: cells.length,
      map: cells.map((c) => c.dataset.state[0] + c.dataset.registered).join(''),
      ...n,
      legend,
      rows,
      polls: Number(document.body.dataset.polls),
      hit: document.getElementById('stat-hit').textContent,
      hitPoints: document.getElementById('hit-line').getAttribute('points').trim().split(/\s+/).filter(Boolean).length,
      status: document.getElementById('status').dataset.state,
    };
  });
}

let browser = null;
try {
  mkdirSync(artifactDir, { recursive: true });
  // A small pool for contexts of 256: four sequences of ~180 tokens do not all fit, so the map
  // fills up, sequences get preempted and cached blocks get evicted.
  server = await startServer(synthModel('tiny'),
    ['--kv-blocks', String(BLOCKS), '--kv-block', '8', '-c', '256', '--parallel', '4', '-t', '1']);

  const json = await (await fetch(`${server.url}/v1/cache`)).json();
  assert.equal(json.object, 'kv_cache');
  assert.equal(json.num_blocks, BLOCKS);
  assert.equal(json.blocks.length, BLOCKS);
  assert.equal(json.counts.free + json.counts.used + json.counts.shared + json.counts.cached, BLOCKS);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  const resp = await page.goto(`${server.url}/?interval=100`);
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()['content-type'], /^text\/html/);

  const idle = await until('the page to draw the pool', 30_000, async () => {
    const s = await readPage(page);
    return s.cells === BLOCKS && s.polls > 0 && s.status === 'live' ? s : null;
  });
  assert.equal(idle.free, BLOCKS, 'an idle pool is all free');
  assert.equal(idle.rows.length, 0);

  // Load: six clients, one request after another, all with one long shared prefix (hits).
  const prefix = 'Once upon a time, in a small village by the sea, there lived an old fisherman and his clever cat.';
  let stop = false;
  const statuses = [];
  const worker = async (w) => {
    for (let i = 0; !stop; ++i) {
      const r = await fetch(`${server.baseURL}/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: `${prefix} Story ${w}.${i}:`, max_tokens: 100, temperature: 0 }),
      });
      const body = await r.text();
      statuses.push(r.status);
      if (r.status !== 200) throw new Error(`completion failed: ${r.status} ${body}`);
    }
  };
  const workers = Array.from({ length: 6 }, (_, w) => worker(w));
  let busy;
  const maps = new Set([idle.map]);
  try {
    // Blocks in use on the map and running sequences in the table. Under this load sequences
    // live for a fraction of a second, so the page is paused (its button) at such a moment.
    busy = await until('a moment with blocks in use and sequences running', 90_000, async () => {
      const s = await readPage(page);
      if (s.used + s.shared === 0 || s.rows.length === 0) return null;
      await page.click('#pause');
      const frozen = await readPage(page);
      if (frozen.status === 'paused' && frozen.used + frozen.shared > 0 && frozen.rows.length > 0) return frozen;
      await page.click('#pause');  // resume and try again
      return null;
    });
    // Clicking a sequence's row outlines exactly its blocks on the map.
    const row = page.locator('#seq-rows tr[data-seq]').first();
    await row.click();
    const blocks = Number(await row.locator('td').nth(4).textContent());
    assert.ok(blocks > 0);
    assert.equal(await page.locator('#block-map .cell.hl').count(), blocks, 'the sequence\'s blocks are outlined');
    assert.equal((await readPage(page)).map, busy.map, 'a paused page does not redraw');
    await page.screenshot({ path: path.join(artifactDir, 'cache_page_mid.png'), fullPage: true, animations: 'disabled' });
    await page.click('#pause');  // live again
    await until('the map to change a few times', 90_000, async () => {
      maps.add((await readPage(page)).map);
      return maps.size >= 5;
    });
  } finally {
    stop = true;
    await Promise.allSettled(workers);
  }
  for (const w of await Promise.allSettled(workers)) if (w.status === 'rejected') throw w.reason;
  console.log(`${elapsed()} under load: ${busy.used} used, ${busy.shared} shared, ${busy.cached} cached, ` +
              `${busy.rows.length} sequences (${busy.rows.join(', ')}); ${maps.size} distinct maps; ` +
              `${statuses.length} completions`);
  assert.ok(busy.rows.every((st) => ['prefill', 'decode', 'waiting'].includes(st)), busy.rows.join());
  assert.deepEqual(busy.legend, { free: busy.free, used: busy.used, shared: busy.shared, cached: busy.cached });

  // Done: nothing in use, no sequences, full blocks kept in the prefix cache.
  const after = await until('the map to settle with cached blocks', 60_000, async () => {
    const s = await readPage(page);
    return s.used + s.shared === 0 && s.rows.length === 0 && s.cached > 0 ? s : null;
  });
  await page.mouse.move(0, 0);
  await until('the page to redraw', 10_000, async () => (await readPage(page)).polls > after.polls + 1);
  const final = await readPage(page);
  console.log(`${elapsed()} after: ${final.cached} cached, ${final.free} free; prefix hit rate ${final.hit}; ` +
              `${final.hitPoints} chart points`);
  assert.equal(final.cached + final.free, BLOCKS);
  assert.ok(parseFloat(final.hit) > 0, `prefix hit rate ${final.hit}`);
  assert.ok(final.hitPoints >= 2, 'the hit-rate chart has points');
  await page.screenshot({ path: path.join(artifactDir, 'cache_page.png'), fullPage: true, animations: 'disabled' });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  console.log(`screenshots in ${artifactDir}: cache_page_mid.png, cache_page.png`);
} finally {
  await browser?.close();
  await server?.stop();
  clearTimeout(watchdog);
}
