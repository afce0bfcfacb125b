/**
 * The supervised Node-RED editor in a real browser (Debian's headless
 * Chromium through playwright-core), as a beekeeper uses it: log in, find the
 * Apiary category, drag an `apiary reading` onto the workspace, give it the
 * node's connection, deploy, pick a channel the node really has, read the
 * help, wire a debug node, deploy, and see the readings arrive.
 *
 * APIARY_SCREENSHOT_OUT=<file.png> also saves the final screenshot there
 * (`npm run screenshot:editor` makes docs/images/node-red-editor.png), and
 * then a missing Chromium fails instead of skipping. APIARY_KEEP_TEST_DIR=1
 * keeps the temp dir (its screenshots, failure.png on a failure).
 */
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NODE_TYPES } from '../../../../flows/node-red-apiary/src/node-types.js';
import type { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { chromiumProblem, launchChromium, type LaunchedChromium } from '../../../support/chromium.js';
import { waitFor } from '../../../support/mesh-node.js';
import { admin, flowsNode, freePort, login, passwd, waitForFlows } from './node-red-helpers.js';

const screenshotOut = process.env.APIARY_SCREENSHOT_OUT ?? '';
const problem = await chromiumProblem();
if (problem !== undefined) console.warn(`editor-browser.test.ts SKIPPED: ${problem}`);

const PASSWORD = 'correct horse battery';
const SELECTOR_WAIT = { timeout: 60_000 };

let dir: string;
let node: ApiaryNode | undefined;
let chromium: LaunchedChromium | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-editor-browser-'));
});

afterEach(async () => {
  await chromium?.close();
  chromium = undefined;
  await node?.stop();
  node = undefined;
  if (process.env.APIARY_KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
});

interface FlowNode { id: string; type: string; wires?: string[][]; [key: string]: unknown }

/** An element of the page, as much as the checks read of it (the test is compiled without the DOM's types). */
interface Attributed { getAttribute(name: string): string | null }
interface Textual { textContent: string | null }

interface Scrollable { scrollTop: number; scrollLeft: number }

/** The editor's own API, read (never driven) to see what the UI did. */
interface EditorWindow {
  RED: { nodes: { eachNode(f: (n: FlowNode) => void): void; filterLinks(f: { source: { id: string } }): { target: { id: string } }[]; dirty(): boolean } };
}

const nodesOfType = (page: Page, type: string): Promise<string[]> => page.evaluate((t) => {
  const ids: string[] = [];
  (globalThis as unknown as EditorWindow).RED.nodes.eachNode((n) => { if (n.type === t) ids.push(n.id); });
  return ids;
}, type);

/** A real mouse drag, in small steps (jQuery UI and d3 see moves, not a jump). */
async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }): Promise<void> {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(from.x + 10, from.y + 5, { steps: 3 });
  await page.mouse.move(to.x, to.y, { steps: 20 });
  await page.mouse.up();
}

async function centre(page: Page, selector: string): Promise<{ x: number; y: number }> {
  const target = page.locator(selector).first();
  await target.scrollIntoViewIfNeeded(SELECTOR_WAIT);
  const box = await target.boundingBox();
  if (!box) throw new Error(`${selector} is not on the page`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Drags a node type from the palette onto the workspace at (x, y) of the page; returns the new node's id. */
async function dragFromPalette(page: Page, type: string, x: number, y: number): Promise<string> {
  const before = await nodesOfType(page, type);
  await drag(page, await centre(page, `.red-ui-palette-node[data-palette-type="${type}"]`), { x, y });
  let added: string | undefined;
  await waitFor(async () => (added = (await nodesOfType(page, type)).find((id) => !before.includes(id))) !== undefined, 20_000, () => `the drag added no ${type}`);
  return added as string;
}

/** Deploy, as a user clicks it; done when the editor has nothing left to deploy (it clears that on the runtime's answer) and says so. */
async function deployFromUi(page: Page): Promise<void> {
  const dirty = () => page.evaluate(() => (globalThis as unknown as EditorWindow).RED.nodes.dirty());
  expect(await dirty()).toBe(true);
  await page.locator('#red-ui-header-button-deploy').click();
  await expect.poll(dirty, SELECTOR_WAIT).toBe(false);
  await page.locator('.red-ui-notification', { hasText: 'Successfully deployed' }).first().waitFor(SELECTOR_WAIT);
  await page.locator('#red-ui-header-button-deploy.disabled').waitFor(SELECTOR_WAIT);
}

describe.skipIf(problem !== undefined && screenshotOut === '')(problem === undefined ? 'the Node-RED editor in a real browser' : `the Node-RED editor in a real browser (SKIPPED: ${problem})`, () => {
  it('loads without errors behind its login, shows the Apiary palette, fills a reading\'s channel picker from the node, renders its help, and deploys a working flow from the UI', async () => {
    const dataDir = path.join(dir, 'data');
    const set = await passwd(dataDir, PASSWORD);
    expect(set.code, set.out).toBe(0);
    const port = await freePort();
    node = flowsNode(dataDir, { port });
    await node.start();
    const { url } = await waitForFlows(node, (s) => s.state === 'running', 'Node-RED running');
    chromium = await launchChromium();
    const page = await chromium.context.newPage();
    const errors: string[] = [];
    let loggedIn = false;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // The one error Node-RED itself causes: with adminAuth the editor first asks GET /settings without a token, and
      // the 401 is how it learns to show the login form (the browser logs every 4xx). Allowed only before the login.
      const where = m.location().url;
      if (!loggedIn && m.text() === 'Failed to load resource: the server responded with a status of 401 (Unauthorized)' && where.startsWith(`${url}settings?`)) return;
      errors.push(`console: ${m.text()} (${where})`);
    });
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));

    try {
      await useTheEditor(page, url, node, () => { loggedIn = true; });
    } catch (err) {
      // What the page looked like, and what it logged (kept with APIARY_KEEP_TEST_DIR=1).
      await page.screenshot({ path: path.join(dir, 'failure.png') }).catch(() => undefined);
      throw new Error(`${(err as Error).message}\nbrowser errors so far: ${JSON.stringify(errors)}`, { cause: err });
    }
    expect(errors).toEqual([]);
  }, 240_000);
});

/** Steps 1 to 6, through the UI; each asserts what it did. */
async function useTheEditor(page: Page, url: string, hive: ApiaryNode, loggingIn: () => void): Promise<void> {
  const nodeId = hive.nodeId;
  const brokerPort = hive.brokerPort ?? 0;
  // 1. The login form of adminAuth (its password set by `apiary flows passwd`), then the editor with the default flow.
  await page.goto(url);
  await page.locator('#node-dialog-login-username').fill('keeper', SELECTOR_WAIT);
  await page.locator('#node-dialog-login-password').fill(PASSWORD);
  loggingIn();
  await page.locator('#node-dialog-login-submit').click();
  await page.locator('#red-ui-workspace-chart').waitFor(SELECTOR_WAIT);
  await page.locator('g[id="a91a7e0000000012"]').waitFor(SELECTOR_WAIT); // the default flow's "raised -> notification"
  expect(await page.locator('#node-dialog-login').isVisible()).toBe(false);

  // 2. The Apiary category, holding the palette's node types in order (the config node is not in the palette).
  const category = page.locator('#red-ui-palette-container-Apiary');
  await category.waitFor(SELECTOR_WAIT);
  expect(await category.locator('.red-ui-palette-header').innerText()).toBe('Apiary');
  const shown = await category.locator('.red-ui-palette-node').evaluateAll((els: Attributed[]) => els.map((e) => e.getAttribute('data-palette-type')));
  expect(shown).toEqual(NODE_TYPES.filter((t) => t !== 'apiary-node'));

  // 3. An apiary reading dragged onto the workspace; its dialog adds the connection to this node's broker; deployed.
  const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
  if (!chart) throw new Error('the workspace has no box');
  const readingId = await dragFromPalette(page, 'apiary-reading', chart.x + 160, chart.y + 400);
  const readingNode = page.locator(`g[id="${readingId}"] rect.red-ui-flow-node`);
  await readingNode.dblclick();
  await page.locator('#node-input-btn-server-add').click(SELECTOR_WAIT);
  await page.locator('#node-config-input-name').fill('this hive', SELECTOR_WAIT);
  await page.locator('#node-config-input-host').fill('127.0.0.1');
  await page.locator('#node-config-input-port').fill(String(brokerPort));
  await page.locator('#node-config-input-nodeId').fill(nodeId);
  await page.locator('#node-config-dialog-ok').click();
  // Back in the reading's dialog: the new connection is chosen, and it cannot offer channels before a deploy.
  await expect.poll(() => page.locator('#node-input-channel-hint').innerText(), SELECTOR_WAIT).toMatch(/not deployed yet/);
  await page.locator('#node-dialog-ok').click();
  await deployFromUi(page);

  // Its picker, opened again: the simulated hive's channels, from GET /apiary/nodes/:id (asked through the node).
  await readingNode.dblclick();
  // The hint and the choices in one look (both are set by the same answer).
  const picker = () => page.locator('#node-input-channel-hint').evaluate((hint: Textual & { ownerDocument: { querySelectorAll(s: string): Attributed[] } }) => ({
    hint: hint.textContent ?? '',
    offered: [...hint.ownerDocument.querySelectorAll('#node-input-channel-choices option')].map((o) => o.getAttribute('value')),
  }));
  await expect.poll(async () => (await picker()).hint, SELECTOR_WAIT).toMatch(new RegExp(`^\\d+ on node ${nodeId}`));
  const { hint, offered } = await picker();
  expect(offered.length).toBeGreaterThan(0);
  expect(hint).toMatch(new RegExp(`^${offered.length} on node ${nodeId}`));
  expect(new Set(offered).size).toBe(offered.length); // each channel once
  expect(Object.keys(hive.latest.readings)).toEqual(expect.arrayContaining(offered));
  expect(offered).toEqual(expect.arrayContaining(['temperature', 'humidity', 'weight']));
  await page.locator('#node-input-channel').fill('temperature');
  await page.locator('#node-dialog-ok').click();

  // 4. Its help, in the help sidebar: the palette's markdown, headings and typed outputs.
  await readingNode.click();
  await page.locator('a.red-ui-tab-link-button[href="#help"]').click();
  const help = page.locator('.red-ui-sidebar-help-stack .red-ui-help').first();
  await help.locator('h3', { hasText: 'Outputs' }).waitFor(SELECTOR_WAIT);
  expect(await help.innerText()).toContain('The readings of an Apiary node');
  expect(await help.locator('dl.message-properties dt').allInnerTexts()).toEqual(expect.arrayContaining([expect.stringMatching(/^payload\s*number$/), expect.stringMatching(/^apiary\.channel\s*string$/)]));

  // 5. A debug node dragged beside it, wired by dragging from port to port, deployed; its readings in the debug sidebar.
  const readingAt = await centre(page, `g[id="${readingId}"] rect.red-ui-flow-node`);
  const debugId = await dragFromPalette(page, 'debug', readingAt.x + 260, readingAt.y);
  await drag(page, await centre(page, `g[id="${readingId}"] .red-ui-flow-port-output rect`), await centre(page, `g[id="${debugId}"] .red-ui-flow-port-input rect`));
  const linkedFrom = (id: string) => page.evaluate((source) => (globalThis as unknown as EditorWindow).RED.nodes.filterLinks({ source: { id: source } }).map((l) => l.target.id), id);
  await expect.poll(() => linkedFrom(readingId), SELECTOR_WAIT).toEqual([debugId]);
  await deployFromUi(page);
  await page.locator('a.red-ui-tab-link-button[href="#debug"]').click();
  const shownReading = page.locator(`.red-ui-debug-msg-node-${debugId}`).filter({ hasText: `${nodeId}/readings/temperature` });
  await shownReading.first().waitFor(SELECTOR_WAIT);
  const value = Number(await shownReading.first().locator('.red-ui-debug-msg-type-number').first().innerText());
  expect(value).toBeGreaterThan(0);
  expect(value).toBeLessThan(60);

  // What the UI deployed, as the admin API has it.
  const tokenRes = await login(url, 'keeper', PASSWORD);
  const { access_token: token } = await tokenRes.json() as { access_token: string };
  const flows = await (await admin(url, 'flows', { token })).json() as FlowNode[];
  const reading = flows.find((n) => n.id === readingId);
  expect(reading).toMatchObject({ type: 'apiary-reading', channel: 'temperature', wires: [[debugId]] });
  expect(flows.find((n) => n.id === reading?.server)).toMatchObject({ type: 'apiary-node', name: 'this hive', host: '127.0.0.1', port: String(brokerPort), nodeId });
  expect(flows.find((n) => n.id === debugId)?.type).toBe('debug');

  // 6. The screenshot: the Apiary palette in view, the flow, the readings arriving.
  const shot = path.join(dir, 'node-red-editor.png');
  await page.mouse.click(chart.x + chart.width - 40, chart.y + chart.height - 60); // deselect: no selection outline
  await page.locator('#red-ui-workspace-chart').evaluate((el: Scrollable) => { el.scrollTop = 0; el.scrollLeft = 0; });
  await category.scrollIntoViewIfNeeded();
  await expect.poll(() => page.locator('.red-ui-notification').count(), SELECTOR_WAIT).toBe(0); // "Successfully deployed" fades
  await page.screenshot({ path: shot });
  expect((await stat(shot)).size).toBeGreaterThan(10_000);
  if (screenshotOut !== '') {
    await mkdir(path.dirname(path.resolve(screenshotOut)), { recursive: true });
    await copyFile(shot, path.resolve(screenshotOut));
  }
}
