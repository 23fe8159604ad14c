// Swagger UI, used as a person would, in Debian's Chromium (playwright-core drives it):
// open /swagger-ui/, Authorize with the key, then on every operation a client calls, Try it out
// -> Execute with the prefilled values, expecting a 2xx. The job-status operation gets the id of
// the job the refresh operation just returned (the one value a person copies by hand).
// The vendors' webhook route is not for clients (it needs a job's token) and is skipped.
//
//   node scripts/contract/swagger-ui.mjs BASE_URL API_KEY [SCREENSHOT_DIR]
//
// playwright-core is resolved from $CONTRACT_NODE/node_modules (scripts/contract.sh installs it
// there, pinned). With SCREENSHOT_DIR, writes swagger-ui-authorized.png and
// swagger-ui-try-it-out.png there (the README's pictures).
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, key, shots] = process.argv.slice(2);
if (!base || !key) {
  console.error('usage: node swagger-ui.mjs BASE_URL API_KEY [SCREENSHOT_DIR]');
  process.exit(2);
}
const modules = path.join(process.env.CONTRACT_NODE ?? '.', 'node_modules') + path.sep;
const { chromium } = createRequire(modules)('playwright-core');

const SKIPPED = new Set(['receive_delivery']); // vendors only: authenticated by a job's token
const LAST = 'get_job'; // needs the job the refresh returned

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const failures = [];
let passed = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  page.setDefaultTimeout(20_000);
  await page.goto(`${base}/swagger-ui/`);
  await page.waitForSelector('.opblock');

  await page.click('.auth-wrapper .authorize');
  await page.fill('.modal-ux .auth-container input', key);
  await page.click('.modal-ux .auth-btn-wrapper .modal-btn.auth');
  await page.waitForSelector('.modal-ux .auth-btn-wrapper .btn-done');
  if (shots) {
    await page.screenshot({ path: path.join(shots, 'swagger-ui-authorized.png') });
  }
  await page.click('.modal-ux .auth-btn-wrapper .btn-done');

  const ids = await page.$$eval('.opblock', (blocks) => blocks.map((b) => b.id));
  const operation = (id) => id.replace(/^operations-[^-]+-/, '');
  const order = ids
    .filter((id) => !SKIPPED.has(operation(id)))
    .sort((a, b) => (operation(a) === LAST) - (operation(b) === LAST));
  let job = null;
  for (const id of order) {
    const name = operation(id);
    const block = page.locator(`#${id}`);
    await block.locator('.opblock-summary').first().click();
    // The UI starts in "Try it out" mode (tryItOutEnabled); enter it where it does not.
    const tryOut = block.locator('.try-out__btn:not(.cancel)');
    if ((await tryOut.count()) > 0) await tryOut.click();
    if (name === LAST) {
      if (!job) {
        failures.push(`${name}: no job id (the refresh did not answer one)`);
        continue;
      }
      await block.locator('tr[data-param-name="id"] input').fill(job);
    }
    await block.locator('.execute').click();
    const status = block.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor();
    const code = Number((await status.innerText()).trim());
    const body = await block
      .locator('.live-responses-table .response-col_description pre')
      .first()
      .innerText()
      .catch(() => '');
    if (code >= 200 && code < 300) {
      passed += 1;
      console.log(`ok   ${code} ${name}`);
    } else {
      failures.push(`${name}: HTTP ${code} ${body.slice(0, 300)}`);
      console.log(`FAIL ${code} ${name}`);
    }
    if (name === 'start_refresh') {
      try {
        job = JSON.parse(body).id;
      } catch {
        job = null;
      }
    }
    if (shots && name === 'list_account') {
      // The request URL and the answer: 700 px of the page, not the whole (long) block.
      const top = await block
        .locator('.responses-inner')
        .first()
        .evaluate((e) => e.getBoundingClientRect().top + window.scrollY);
      await page.screenshot({
        path: path.join(shots, 'swagger-ui-try-it-out.png'),
        fullPage: true,
        clip: { x: 0, y: Math.max(0, top - 20), width: 1100, height: 700 },
      });
    }
    // Collapse, so the next operation's block is in view and the page stays small.
    await block.locator('.opblock-summary').first().click();
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failures.length} failed`);
for (const failure of failures) console.error(`swagger-ui: ${failure}`);
process.exit(failures.length === 0 && passed > 0 ? 0 : 1);
