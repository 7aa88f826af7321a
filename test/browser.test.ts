/**
 * The web client in a real browser: Debian's Chromium driven by
 * playwright-core, two browser contexts as two people, against a real
 * server and database. Screenshots of each main view go to
 * test-output/screenshots/ (not committed) for a reviewer to look at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import t from 'tap';
import { projectRoot } from '../src/paths';
import { buildTestApp, listen } from './helpers/app';
import { adminClient } from './helpers/db';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = path.join(projectRoot, 'test-output', 'screenshots');

// .ci/run installs Debian's chromium and sets SIGNALBOX_REQUIRE_BROWSER=1,
// so CI never skips this; a fresh laptop without it still passes npm test.
const missing = !fs.existsSync(CHROMIUM);
if (missing && process.env.SIGNALBOX_REQUIRE_BROWSER === '1') t.fail(`no browser at ${CHROMIUM}`);
t.test('two people use the web client', { skip: missing ? `needs Chromium at ${CHROMIUM} (apt-get install chromium)` : false }, async (t) => {
  fs.mkdirSync(shots, { recursive: true });
  const { app, db } = await buildTestApp(t);
  const base = await listen(app);
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const open = async (): Promise<{ ctx: BrowserContext; page: Page }> => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone-width screen
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.setDefaultTimeout(10_000);
    await page.goto(base);
    return { ctx, page };
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const register = async (page: Page, username: string, displayName?: string) => {
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'Create an account' }) });
    await form.getByLabel(/Username/).fill(username);
    if (displayName) await form.getByLabel(/Display name/).fill(displayName);
    await form.getByLabel(/Password/).fill('correct horse battery');
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Conversations' }).waitFor();
  };

  const a = await open();
  const b = await open();
  await a.page.getByRole('heading', { name: 'Log in' }).waitFor();
  t.notOk(await a.page.locator('#nav').isVisible(), 'signed out, the navigation (Log out, counters) is hidden');
  await shot(a.page, '01-sign-in');
  await register(a.page, 'alice_ui');
  await register(b.page, 'bob_ui');
  t.ok(await b.page.locator('#nav').isVisible(), 'signed in, the navigation shows');
  const count = b.page.locator('#inbox-count');
  t.equal(await count.textContent(), '', 'B starts with nothing unread');
  t.equal(await b.page.locator('nav .count, nav .badge').count(), 1, 'one counter in the navigation, not two');

  // A sends B a message; B's badge updates without a reload.
  const start = a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) });
  await start.getByLabel('Username').fill('bob_ui');
  await start.getByLabel('Message').fill('Hello Bob, from the browser');
  await start.getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.getByRole('heading', { name: /Conversation with bob_ui/ }).waitFor();
  await b.page.waitForFunction(() => document.querySelector('#inbox-count')?.textContent === '1');
  t.pass('B\'s unread count shows 1 without a reload');
  await shot(b.page, '02-conversations-with-badge');

  // B opens it: it is marked read and the count clears.
  await b.page.getByRole('link', { name: 'alice_ui' }).click();
  await b.page.getByText('Hello Bob, from the browser').waitFor();
  await b.page.waitForFunction(() => document.querySelector('#inbox-count')?.textContent === '');
  t.pass('opening the conversation marks it read');
  t.equal(await b.page.locator('article.unread').count(), 0, 'no message is shown unread');
  // A, with the conversation open, sees the read receipt arrive (message.read).
  await a.page.locator('article', { hasText: 'Hello Bob, from the browser' }).locator('.receipt').waitFor();
  t.pass('A sees B\'s read receipt without a reload');
  await shot(a.page, '02b-read-receipt');

  // B replies; A replies to the reply; B replies to that reply.
  const reply = async (page: Page, to: string, text: string) => {
    const article = page.locator('article', { hasText: to });
    await article.getByRole('button', { name: 'Reply' }).click();
    await article.getByLabel('Reply').fill(text);
    await article.getByRole('button', { name: 'Send reply' }).click();
    await page.getByText(text).waitFor();
  };
  await reply(b.page, 'Hello Bob, from the browser', 'Hi Alice (reply)');
  await a.page.getByText('Hi Alice (reply)').waitFor();
  t.pass('B\'s reply appears in A\'s open conversation without a reload');
  await reply(a.page, 'Hi Alice (reply)', 'A reply to your reply');
  await b.page.reload();
  await reply(b.page, 'A reply to your reply', 'Third level');
  await a.page.reload();
  await a.page.getByText('Third level').waitFor();
  // The conversation view is a bounded number of requests: no request per thread.
  const threadRequests: string[] = [];
  a.page.on('request', (r) => { if (/\/messages\/\d+\/thread/.test(r.url())) threadRequests.push(r.url()); });
  await a.page.reload();
  await a.page.getByText('Third level').waitFor();
  t.strictSame(threadRequests, [], 'opening a conversation fetches no thread one by one');
  const depth = await a.page.locator('article', { hasText: 'Third level' }).evaluate((el) => {
    let n = 0;
    for (let p: Element | null = el; p; p = p.parentElement) if (p.classList.contains('replies')) n++;
    return n;
  });
  t.equal(depth, 3, 'A sees the reply to a reply nested three levels deep');
  await shot(a.page, '03-thread');

  // A edits the first message; B sees "edited" and the history.
  const first = a.page.locator('article', { hasText: 'Hello Bob, from the browser' });
  await first.getByRole('button', { name: 'Edit' }).click();
  await first.getByLabel('Edit message').fill('Hello Bob (edited)');
  await first.getByRole('button', { name: 'Save' }).click();
  await a.page.getByText('Hello Bob (edited)').waitFor();
  // B has the conversation open: the edit and its marker arrive live (message.edited).
  const edited = b.page.locator('article', { hasText: 'Hello Bob (edited)' });
  await edited.locator('.edited').waitFor();
  t.pass('B sees the edit and its "edited" marker without a reload');
  await shot(b.page, '03b-live-edit');
  await edited.getByRole('button', { name: 'History' }).click();
  await edited.getByText('Hello Bob, from the browser').waitFor();
  t.match(await edited.locator('.history').textContent(), /Hello Bob, from the browser.*replaced .* by alice_ui/s, 'B sees the original text, when and by whom');
  await shot(b.page, '04-edit-history');

  // Inbox and notifications views. Carol (display name "Carol C.") writes
  // to A: every view names her the same way.
  const c = await open();
  await register(c.page, 'carol_ui', 'Carol C.');
  const startC = c.page.locator('form', { has: c.page.getByRole('heading', { name: 'Start a conversation' }) });
  await startC.getByLabel('Username').fill('alice_ui');
  await startC.getByLabel('Message').fill('Hello from Carol');
  await startC.getByRole('button', { name: 'Send', exact: true }).click();
  await c.page.getByRole('heading', { name: /Conversation with/ }).waitFor();
  await a.page.goto(`${base}/#/inbox`);
  await a.page.getByRole('heading', { name: /Unread messages/ }).waitFor();
  await a.page.getByText('Hello from Carol').waitFor();
  t.ok(await a.page.locator('#main li', { hasText: 'Hello from Carol' }).getByText('Carol C.').isVisible(), 'the inbox names Carol by her display name');
  await shot(a.page, '05-inbox');
  await a.page.goto(`${base}/#/conversations`);
  await a.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  await a.page.getByText('Hello from Carol').waitFor();
  t.ok(await a.page.getByRole('link', { name: 'Carol C.' }).isVisible(), 'and so does the conversation list');
  await a.page.goto(`${base}/#/notifications`);
  await a.page.getByRole('heading', { name: 'Notifications' }).waitFor();
  t.ok(await a.page.getByRole('button', { name: /Reply from bob_ui/ }).first().isVisible(), 'A\'s notifications list B\'s replies');
  const markAll = await a.page.getByRole('button', { name: 'Mark all read' }).boundingBox();
  t.ok(markAll && markAll.height < 50, `"Mark all read" keeps a button's height (${markAll?.height} px)`);
  await shot(a.page, '06-notifications');

  // Errors are shown in plain words; nothing breaks.
  await a.page.goto(`${base}/#/conversations`);
  const startAgain = a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) });
  await startAgain.getByLabel('Username').fill('nobody_here');
  await startAgain.getByLabel('Message').fill('hello?');
  await startAgain.getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.getByRole('alert').getByText('Nobody is called "nobody_here"').waitFor();
  t.pass('an unknown username is explained as such, not as something deleted');
  await shot(a.page, '06b-unknown-user');

  // B searches: the edited message is found by its new words, the match is
  // marked; its old words ("browser", before the edit) are not searched.
  await b.page.goto(`${base}/#/search`);
  const searchBox = b.page.getByRole('searchbox');
  await searchBox.fill('"hello bob"');
  await b.page.getByRole('button', { name: 'Search' }).click();
  await b.page.locator('.results mark', { hasText: 'Hello' }).first().waitFor();
  t.pass('the search finds the message and marks the matching words');
  t.equal(await b.page.locator('.results li').count(), 1, 'one result');
  await shot(b.page, '06c-search');
  await b.page.goto(`${base}/#/search?q=browser`);
  await b.page.getByText('No messages match.').waitFor();
  t.pass('the words an edit removed are not found');

  // A blocks B from their conversation: B's next message is refused in
  // plain words (the database's rule, 403 BLOCKED); A unblocks.
  await a.page.goto(`${base}/#/conversations`);
  await a.page.getByRole('link', { name: 'bob_ui' }).click();
  // (exact: "Block bob_ui" is a substring of "Unblock bob_ui")
  await a.page.getByRole('button', { name: 'Block bob_ui', exact: true }).click();
  await a.page.getByRole('button', { name: 'Unblock bob_ui', exact: true }).waitFor();
  await b.page.goto(`${base}/#/conversations`);
  await b.page.getByRole('link', { name: 'alice_ui' }).click();
  await b.page.getByLabel(/New message to/).fill('are you there?');
  await b.page.getByRole('button', { name: 'Send', exact: true }).click();
  await b.page.getByRole('alert').getByText(/blocked you/).waitFor();
  t.pass('B\'s message to A, who blocked B, is refused in plain words');
  await shot(b.page, '06d-blocked');
  await a.page.getByRole('button', { name: 'Unblock bob_ui', exact: true }).click();
  await a.page.getByRole('button', { name: 'Block bob_ui', exact: true }).waitFor();
  t.pass('A unblocks B from the same place');

  // A makes a group with B; they talk in it; B leaves.
  await a.page.goto(`${base}/#/conversations`);
  const newGroup = a.page.locator('form', { has: a.page.getByRole('heading', { name: 'New group' }) });
  await newGroup.getByLabel('Title').fill('Weekend plans');
  await newGroup.getByLabel(/Members/).fill('bob_ui');
  await newGroup.getByRole('button', { name: 'Create group' }).click();
  await a.page.getByRole('heading', { name: 'Weekend plans' }).waitFor();
  t.pass('A creates a group and lands in it');
  await a.page.getByLabel(/New message to Weekend plans/).fill('Group hello from Alice');
  await a.page.getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.locator('article', { hasText: 'Group hello from Alice' }).waitFor();
  await b.page.goto(`${base}/#/conversations`);
  await b.page.getByRole('link', { name: /Weekend plans/ }).click();
  const fromAlice = b.page.locator('article', { hasText: 'Group hello from Alice' });
  await fromAlice.waitFor();
  t.match(await fromAlice.locator('.meta strong').textContent(), 'alice_ui', 'B sees the group message under its sender\'s name');
  await a.page.getByLabel(/New message to Weekend plans/).fill('Are you coming?');
  await a.page.getByRole('button', { name: 'Send', exact: true }).click();
  await b.page.getByText('Are you coming?').waitFor();
  t.pass('A\'s next group message reaches B\'s open group without a reload');
  await b.page.getByLabel(/New message to Weekend plans/).fill('Yes!');
  await b.page.getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.getByText('Yes!').waitFor();
  t.pass('and B\'s answer reaches A\'s');
  await a.page.locator('summary', { hasText: '2 members' }).click();
  t.ok(await a.page.getByRole('button', { name: 'Remove bob_ui' }).isVisible(), 'the owner may remove B');
  await shot(a.page, '06e-group');
  b.page.once('dialog', (d) => void d.accept());
  await b.page.getByRole('button', { name: 'Leave group' }).click();
  await b.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  t.equal(await b.page.getByRole('link', { name: /Weekend plans/ }).count(), 0, 'B left: the group is no longer in B\'s list');
  await a.page.reload();
  await a.page.locator('summary', { hasText: '1 member' }).waitFor();
  t.pass('A sees one member left');

  // A unsends a message; B reports another; B, made a moderator by a DBA, dismisses the report.
  await a.page.goto(`${base}/#/c/${await b.page.evaluate(async () => (await (await fetch('/me')).json()).id)}`);
  await a.page.getByRole('heading', { name: /Conversation with bob_ui/ }).waitFor();
  await a.page.getByLabel(/New message to/).fill('Oops, wrong chat');
  await a.page.getByRole('button', { name: 'Send', exact: true }).click();
  const oops = a.page.locator('article', { hasText: 'Oops, wrong chat' });
  await oops.waitFor();
  a.page.once('dialog', (d) => void d.accept());
  await oops.getByRole('button', { name: 'Unsend' }).click();
  await a.page.getByText('You unsent this message.').waitFor();
  t.equal(await a.page.getByText('Oops, wrong chat').count(), 0, 'A\'s unsent message shows as unsent');
  await b.page.goto(`${base}/#/conversations`);
  await b.page.getByRole('link', { name: 'alice_ui' }).click();
  await b.page.getByText('This message was unsent.').waitFor();
  t.equal(await b.page.getByText('Oops, wrong chat').count(), 0, 'and B never sees its words');
  const reported = b.page.locator('article', { hasText: 'Hello Bob (edited)' });
  await reported.getByRole('button', { name: 'Report' }).click();
  await reported.getByLabel(/Why are you reporting/).fill('testing the report button');
  await reported.getByRole('button', { name: 'Send report' }).click();
  await b.page.getByText('Reported. A moderator will look at it.').waitFor();
  t.pass('B reports A\'s message');
  t.notOk(await b.page.locator('#moderation-link').isVisible(), 'no moderation page for a user');
  const admin = await adminClient(t, db.url);
  await admin.query(`update app_public.users set is_moderator = true where username = 'bob_ui'`);
  await b.page.reload();
  await b.page.locator('#moderation-link').click();
  const item = b.page.locator('#reports li', { hasText: 'testing the report button' });
  await item.waitFor();
  t.ok(await item.getByText('Hello Bob (edited)').isVisible(), 'the moderator sees the words as reported');
  await shot(b.page, '06f-moderation');
  await item.getByRole('button', { name: 'Dismiss' }).click();
  await b.page.getByText('No open reports.').waitFor();
  t.pass('and dismisses the report');

  // A downloads everything of A's from the account page.
  await a.page.goto(`${base}/#/account`);
  const exportLink = a.page.getByRole('link', { name: 'Download all my data' });
  t.equal(await exportLink.getAttribute('href'), '/me/export', 'the account page links the export');
  const exported = await a.page.evaluate(async () => (await fetch('/me/export')).text());
  const lines = exported.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; counts?: { messages: number }; message?: { content: string } });
  const messages = lines.filter((l) => l.type === 'message');
  t.ok(messages.some((l) => l.message?.content === 'Hello from Carol'), 'which the browser session may download: it holds Carol\'s message to A');
  t.equal(lines.at(-1)?.counts?.messages, messages.length, 'whole: its last line counts its messages');

  // A deletes the account; A is signed out; B's conversation with A is gone.
  await a.page.goto(`${base}/#/account`);
  a.page.once('dialog', (d) => void d.accept());
  await a.page.getByLabel('Confirm with your password').fill('correct horse battery');
  await shot(a.page, '07-account');
  await a.page.getByRole('button', { name: 'Delete my account' }).click();
  await a.page.getByRole('heading', { name: 'Log in' }).waitFor();
  t.pass('A is signed out after deleting the account');
  await b.page.goto(`${base}/#/conversations`);
  await b.page.reload();
  await b.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  t.equal(await b.page.getByText('alice_ui').count(), 0, 'B\'s conversation with A is gone');
  t.strictSame(pageErrors, [], 'no script errors on any page');
});
