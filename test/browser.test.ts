/**
 * The web client in a real browser: Debian's Chromium driven by
 * playwright-core, browser contexts as people (Alice at a desktop width,
 * Bob at a phone's), against a real server and database. Screenshots of
 * each main view at both widths go to test-output/screenshots/ (not
 * committed) for a reviewer to look at. Every page's console is watched:
 * an error there fails the test unless it is the network log of a request
 * the step expects to fail.
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
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// .ci/run installs Debian's chromium and sets SIGNALBOX_REQUIRE_BROWSER=1,
// so CI never skips this; a fresh laptop without it still passes npm test.
const missing = !fs.existsSync(CHROMIUM);
if (missing && process.env.SIGNALBOX_REQUIRE_BROWSER === '1') t.fail(`no browser at ${CHROMIUM}`);
t.test('people chat in the web client', { skip: missing ? `needs Chromium at ${CHROMIUM} (apt-get install chromium)` : false }, async (t) => {
  fs.mkdirSync(shots, { recursive: true });
  const { app, db } = await buildTestApp(t);
  const base = await listen(app);
  const admin = await adminClient(t, db.url);
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());

  // Console errors, each with the page's address; `expectFailure` names a
  // request whose failure (and its network log line) a step provokes.
  const consoleErrors: string[] = [];
  const expectedFailures: RegExp[] = [];
  const expectFailure = (url: RegExp) => expectedFailures.push(url);
  const watch = (page: Page) => {
    page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: script error ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const where = m.location().url;
      if (/Failed to load resource/.test(m.text()) && expectedFailures.some((re) => re.test(where))) return;
      consoleErrors.push(`${page.url()}: ${m.text()} (${where})`);
    });
  };
  const open = async (viewport = PHONE): Promise<{ ctx: BrowserContext; page: Page }> => {
    const ctx = await browser.newContext({ viewport });
    const page = await ctx.newPage();
    watch(page);
    page.setDefaultTimeout(10_000);
    await page.goto(base);
    return { ctx, page };
  };
  /** A screenshot at the page's width; `both`: at the other width too. */
  const shot = async (page: Page, name: string, both = false) => {
    const own = page.viewportSize()!;
    await page.screenshot({ path: path.join(shots, `${name}-${own.width < 600 ? 'phone' : 'desktop'}.png`) });
    if (!both) return;
    const other = own.width < 600 ? DESKTOP : PHONE;
    await page.setViewportSize(other);
    await page.screenshot({ path: path.join(shots, `${name}-${other.width < 600 ? 'phone' : 'desktop'}.png`) });
    await page.setViewportSize(own);
  };
  const register = async (page: Page, username: string, displayName?: string) => {
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'Create an account' }) });
    await form.getByLabel(/Username/).fill(username);
    if (displayName) await form.getByLabel(/Display name/).fill(displayName);
    await form.getByLabel(/Password/).fill('correct horse battery');
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Conversations' }).waitFor();
  };
  /** The chat's message whose own words (not a quote of them) hold `text`. */
  const msg = (page: Page, text: string | RegExp) => page.locator('.chat article').filter({ has: page.locator('.content', { hasText: text }) });
  const composer = (page: Page) => page.getByRole('textbox', { name: /^Message to / });
  const say = async (page: Page, text: string) => {
    await composer(page).fill(text);
    await composer(page).press('Enter');
    await msg(page, text).last().waitFor();
  };
  /** Opens a message's actions (the ⋯ menu) and clicks one. */
  const act = async (page: Page, hasText: string, action: string) => {
    const article = msg(page, hasText).last();
    await article.locator('summary').click();
    await article.getByRole('button', { name: action, exact: true }).click();
  };
  const idOf = (page: Page) => page.evaluate(async () => ((await (await fetch('/auth/session')).json()) as { user: { id: number } }).user.id);
  /** Opens a direct conversation by address and waits until it is the one shown. */
  const openChat = async (page: Page, partnerId: number, name: string) => {
    await page.goto(`${base}/#/c/${partnerId}`);
    await page.locator('.chat-head h2', { hasText: name }).waitFor();
    await page.getByRole('textbox', { name: `Message to ${name}` }).waitFor();
  };
  const scrollState = (page: Page) => page.locator('.chat-log').evaluate((el) => ({
    top: el.scrollTop, fromBottom: el.scrollHeight - el.scrollTop - el.clientHeight,
  }));

  const a = await open(DESKTOP);
  const b = await open(PHONE);
  await a.page.getByRole('heading', { name: 'Log in' }).waitFor();
  t.notOk(await a.page.locator('#nav').isVisible(), 'signed out, the navigation is hidden');
  await shot(a.page, '01-sign-in', true);
  await register(a.page, 'alice_ui');
  await register(b.page, 'bob_ui');
  t.equal(await a.page.locator('#whoami').textContent(), '@alice_ui', 'the header says who is signed in');
  t.equal(await b.page.locator('nav .count, nav .badge').count(), 1, 'one unread counter in the navigation');
  t.equal(await b.page.getByRole('link', { name: /Unread|Notifications/ }).count(), 0, 'and no second unread page beside it');

  // A starts a conversation with B; B's count updates without a reload.
  const start = a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) });
  await start.getByLabel('Username').fill('bob_ui');
  await start.getByLabel('Message').fill('Hello Bob, from the browser');
  await start.getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.getByRole('heading', { name: 'bob_ui' }).waitFor();
  await msg(a.page, 'Hello Bob, from the browser').waitFor();
  await b.page.waitForFunction(() => document.querySelector('#unread-count')?.textContent === '1');
  t.pass('B\'s unread count shows 1 without a reload');
  t.equal(await b.page.title(), '(1) signalbox', 'and so does the tab\'s title');
  await b.page.locator('#conversations li', { hasText: 'alice_ui' }).locator('.badge').waitFor();
  await shot(b.page, '02-conversations', true);

  // B opens it: read, the count clears, A sees the receipt live.
  await b.page.getByRole('link', { name: 'alice_ui' }).click();
  await msg(b.page, 'Hello Bob, from the browser').waitFor();
  await b.page.waitForFunction(() => document.querySelector('#unread-count')?.textContent === '');
  t.pass('opening the conversation marks it read');
  await msg(a.page, 'Hello Bob, from the browser').locator('.receipt').waitFor();
  t.pass('A sees B\'s read receipt without a reload');
  t.ok(await composer(b.page).evaluate((el) => document.activeElement === el), 'the composer has the focus');

  // Enter sends; Shift+Enter makes a newline.
  await composer(b.page).fill('Hi Alice');
  await composer(b.page).press('Shift+Enter');
  await composer(b.page).type('second line');
  t.equal(await composer(b.page).inputValue(), 'Hi Alice\nsecond line', 'Shift+Enter makes a new line and sends nothing');
  await composer(b.page).press('Enter');
  await msg(b.page, 'second line').waitFor();
  t.equal(await composer(b.page).inputValue(), '', 'Enter sent it and emptied the composer');
  await msg(a.page, 'second line').waitFor();
  t.pass('B\'s message reaches A\'s open conversation live');
  const order = await a.page.locator('.chat article .content').allTextContents();
  t.strictSame(order.slice(-2), ['Hello Bob, from the browser', 'Hi Alice\nsecond line'], 'newest at the bottom');
  const composerBelow = await a.page.evaluate(() =>
    document.querySelector('.composer')!.getBoundingClientRect().top >= document.querySelector('.chat-log')!.getBoundingClientRect().bottom - 1);
  t.ok(composerBelow, 'the composer sits under the messages');

  // Replies: from the message's menu, quoted in the chat, a tree in the thread view.
  await act(b.page, 'Hello Bob, from the browser', 'Reply');
  await b.page.getByText(/Replying to alice_ui/).waitFor();
  await say(b.page, 'A reply to your hello');
  t.match(await msg(b.page, 'A reply to your hello').locator('.quote').textContent(), /alice_ui: Hello Bob/, 'a reply quotes its parent');
  await msg(a.page, 'A reply to your hello').waitFor();
  await msg(a.page, 'Hello Bob, from the browser').getByRole('link', { name: '1 reply' }).click();
  await a.page.getByRole('heading', { name: 'Thread' }).waitFor();
  const replyIn = async (page: Page, to: string, text: string) => {
    const article = page.locator('.tree article', { hasText: to }).last();
    await article.getByRole('button', { name: 'Reply' }).click();
    await article.getByLabel('Reply').fill(text);
    await article.getByRole('button', { name: 'Send reply' }).click();
    await page.locator('.tree article', { hasText: text }).waitFor();
  };
  await replyIn(a.page, 'A reply to your hello', 'A reply to your reply');
  await replyIn(a.page, 'A reply to your reply', 'Third level');
  const depth = await a.page.locator('.tree article', { hasText: 'Third level' }).evaluate((el) => {
    let n = 0;
    for (let p: Element | null = el; p; p = p.parentElement) if (p.classList.contains('replies')) n++;
    return n;
  });
  t.equal(depth, 3, 'the thread view nests a reply to a reply to a reply three levels deep');
  await shot(a.page, '03-thread', true);
  await a.page.getByRole('link', { name: 'Back to the conversation' }).click();
  await msg(a.page, 'Third level').waitFor();

  // A edits the first message: B sees it live, and its history.
  await act(a.page, 'Hello Bob, from the browser', 'Edit');
  t.equal(await composer(a.page).inputValue(), 'Hello Bob, from the browser', 'editing puts the words in the composer');
  await composer(a.page).fill('Hello Bob (edited)');
  await composer(a.page).press('Enter');
  await msg(a.page, 'Hello Bob (edited)').waitFor();
  const edited = msg(b.page, 'Hello Bob (edited)');
  await edited.locator('.edited').waitFor();
  t.pass('B sees the edit and its marker without a reload');
  await act(b.page, 'Hello Bob (edited)', 'History');
  await edited.getByText('Hello Bob, from the browser').waitFor();
  t.match(await edited.locator('.history').textContent(), /Hello Bob, from the browser.*replaced .* by alice_ui/s, 'the history shows the original, when and by whom');
  await shot(b.page, '04-chat-history', true);

  // A long conversation over a week, imported by a DBA: Dave and B, 130
  // messages in runs of five. The first page is short of the whole; the
  // rest loads as B scrolls up.
  const [aliceId, bobId] = [await idOf(a.page), await idOf(b.page)];
  const { rows: [dave] } = await admin.query<{ id: string }>(`insert into app_public.users (username) values ('dave_ui') returning id`);
  const daveId = Number(dave!.id);
  await admin.query(
    `insert into app_public.messages (sender_id, receiver_id, content, sent_at)
     select case when (i / 5) % 2 = 0 then $1::bigint else $2::bigint end,
            case when (i / 5) % 2 = 0 then $2::bigint else $1::bigint end,
            'history ' || i, now() - interval '7 days' + (i / 5) * interval '6 hours' + (i % 5) * interval '1 minute'
       from generate_series(0, 129) i order by i`, [daveId, bobId]);
  await openChat(b.page, daveId, 'dave_ui');
  await msg(b.page, /^history 129$/).waitFor();
  t.ok((await scrollState(b.page)).fromBottom < 5, 'the conversation opens at its newest message');
  const firstPage = await b.page.locator('.chat article').count();
  t.ok(firstPage < 130, `the first page does not hold everything (${firstPage} messages)`);
  for (let i = 0; i < 20 && !(await b.page.getByText('This is the beginning of the conversation.').isVisible()); i++) {
    await b.page.locator('.chat-log').evaluate((el) => { el.scrollTop = 0; });
    await b.page.waitForTimeout(250);
  }
  await b.page.getByText('This is the beginning of the conversation.').waitFor();
  t.equal(await msg(b.page, /^history 0$/).count(), 1, 'scrolling up reaches the very first message');
  t.equal(await b.page.locator('.chat article').count(), 130, 'every message of the long conversation is there, once');
  const layout = await b.page.locator('.chat-list').evaluate((list) => [...list.children].map((el) => ({
    day: el.classList.contains('day') ? el.textContent : null,
    head: el.classList.contains('head'),
    sender: (el as HTMLElement).dataset.senderId, sentAt: (el as HTMLElement).dataset.sentAt,
    hasName: el.querySelector('.sender') !== null,
  })));
  const articles = layout.filter((x) => x.day === null);
  const days = layout.filter((x) => x.day !== null).map((x) => x.day);
  t.ok(days.length >= 7, `the days are separated (${days.join(' | ')})`);
  t.ok(days.includes('Today') && new Set(days).size === days.length, 'each day once, today called Today');
  let wrongHeads = 0;
  articles.forEach((m, i) => {
    const prev = articles[i - 1];
    const sameDay = prev && new Date(prev.sentAt!).toDateString() === new Date(m.sentAt!).toDateString();
    const run = prev && sameDay && prev.sender === m.sender && Date.parse(m.sentAt!) - Date.parse(prev.sentAt!) <= 5 * 60_000;
    if (m.hasName === Boolean(run) || m.head === Boolean(run)) wrongHeads++;
  });
  t.equal(wrongHeads, 0, 'a name and time head each run of one sender\'s messages, and only that');
  t.ok(articles.filter((m) => m.hasName).length <= 27, 'runs of five show one name and time, not five');
  await shot(b.page, '05-long-conversation', true);

  // Following: at the bottom the view follows a new message; scrolled up
  // it stays, and offers a way down. (Dave writes through a DBA.)
  const daveSays = (text: string) => admin.query(
    'insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3)', [daveId, bobId, text]);
  await b.page.locator('.chat-log').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await daveSays('Are you following?');
  await msg(b.page, 'Are you following?').waitFor();
  await b.page.waitForTimeout(100);
  t.ok((await scrollState(b.page)).fromBottom < 5, 'at the bottom, the view follows the new message');
  await b.page.locator('.chat-log').evaluate((el) => { el.scrollTop = el.scrollHeight / 3; });
  const before = await scrollState(b.page);
  await daveSays('And now?');
  await msg(b.page, 'And now?').waitFor();
  t.equal((await scrollState(b.page)).top, before.top, 'scrolled up, the view stays where the reader is');
  await b.page.getByRole('button', { name: 'New messages ↓' }).click();
  t.ok((await scrollState(b.page)).fromBottom < 5, 'and "New messages" takes the reader down');

  // One unread place: the list's counts, and "Mark all read".
  await a.page.goto(`${base}/#/conversations`);
  await a.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  await admin.query('insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3), ($1, $2, $4)', [daveId, aliceId, 'Dave to Alice', 'twice']);
  await a.page.waitForFunction(() => document.querySelector('#unread-count')?.textContent === '2');
  await a.page.locator('#conversations li', { hasText: 'dave_ui' }).locator('.badge', { hasText: '2' }).waitFor();
  t.pass('a new conversation appears in the list live, with its count');
  await shot(a.page, '06-unread', true);
  await a.page.getByRole('button', { name: 'Mark all read' }).click();
  await a.page.waitForFunction(() => document.querySelector('#unread-count')?.textContent === '');
  await a.page.locator('#conversations .badge').first().waitFor({ state: 'detached' });
  t.equal(await a.page.locator('#conversations li.unread').count(), 0, '"Mark all read" clears every count');
  for (const old of ['#/inbox', '#/notifications']) {
    await a.page.goto(`${base}/${old}`);
    await a.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  }
  t.pass('the old unread pages lead to the one list');

  // Carol (display name "Carol C.") writes to A: named the same way everywhere.
  const c = await open(PHONE);
  await register(c.page, 'carol_ui', 'Carol C.');
  const startC = c.page.locator('form', { has: c.page.getByRole('heading', { name: 'Start a conversation' }) });
  await startC.getByLabel('Username').fill('alice_ui');
  await startC.getByLabel('Message').fill('Hello from Carol');
  await startC.getByRole('button', { name: 'Send', exact: true }).click();
  await msg(c.page, 'Hello from Carol').waitFor();
  await a.page.getByText('Hello from Carol').waitFor();
  t.pass('the list shows a new conversation live');
  t.ok(await a.page.getByRole('link', { name: 'Carol C.' }).isVisible(), 'named by her display name');

  // Errors are shown in plain words; nothing breaks.
  expectFailure(/\/users\/nobody_here$/);
  await a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) }).getByLabel('Username').fill('nobody_here');
  await a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) }).getByLabel('Message').fill('hello?');
  await a.page.locator('form', { has: a.page.getByRole('heading', { name: 'Start a conversation' }) }).getByRole('button', { name: 'Send', exact: true }).click();
  await a.page.getByRole('alert').getByText('Nobody is called "nobody_here"').waitFor();
  t.pass('an unknown username is explained as such');

  // Search: found by new words, matches marked; the old words are not.
  await b.page.goto(`${base}/#/search`);
  await b.page.getByRole('searchbox').fill('"hello bob"');
  await b.page.getByRole('button', { name: 'Search' }).click();
  await b.page.locator('.results mark', { hasText: 'Hello' }).first().waitFor();
  t.equal(await b.page.locator('.results li').count(), 1, 'the search finds the edited message');
  await shot(b.page, '06-search', true);
  await b.page.goto(`${base}/#/search?q=browser`);
  await b.page.getByText('No messages match.').waitFor();
  t.pass('the words an edit removed are not found');

  // A blocks B: B's next message is refused in plain words; A unblocks.
  await openChat(a.page, bobId, 'bob_ui');
  await a.page.getByRole('button', { name: 'Block bob_ui', exact: true }).click();
  await a.page.getByRole('button', { name: 'Unblock bob_ui', exact: true }).waitFor();
  await openChat(b.page, aliceId, 'alice_ui');
  expectFailure(/\/messages$/);
  await composer(b.page).fill('are you there?');
  await composer(b.page).press('Enter');
  await b.page.getByRole('alert').getByText(/blocked you/).waitFor();
  t.pass('B\'s message to A, who blocked B, is refused in plain words');
  await a.page.getByRole('button', { name: 'Unblock bob_ui', exact: true }).click();
  await a.page.getByRole('button', { name: 'Block bob_ui', exact: true }).waitFor();
  expectedFailures.pop();

  // A makes a group with B; they talk in it live; B leaves.
  await a.page.goto(`${base}/#/conversations`);
  const newGroup = a.page.locator('form', { has: a.page.getByRole('heading', { name: 'New group' }) });
  await newGroup.getByLabel('Title').fill('Weekend plans');
  await newGroup.getByLabel(/Members/).fill('bob_ui');
  await newGroup.getByRole('button', { name: 'Create group' }).click();
  await a.page.getByRole('heading', { name: 'Weekend plans' }).waitFor();
  await say(a.page, 'Group hello from Alice');
  await b.page.goto(`${base}/#/conversations`);
  await b.page.getByRole('link', { name: /Weekend plans/ }).click();
  const fromAlice = msg(b.page, 'Group hello from Alice');
  await fromAlice.waitFor();
  t.equal(await fromAlice.locator('.sender strong').textContent(), 'alice_ui', 'B sees the group message under its sender\'s name');
  await say(a.page, 'Are you coming?');
  await msg(b.page, 'Are you coming?').waitFor();
  await say(b.page, 'Yes!');
  await msg(a.page, 'Yes!').waitFor();
  t.pass('group messages reach the other member\'s open group both ways');
  await a.page.locator('summary', { hasText: '2 members' }).click();
  t.ok(await a.page.getByRole('button', { name: 'Remove bob_ui' }).isVisible(), 'the owner may remove B');
  await shot(a.page, '07-group', true);
  await b.page.locator('summary', { hasText: '2 members' }).click();
  b.page.once('dialog', (d) => void d.accept());
  await b.page.getByRole('button', { name: 'Leave group' }).click();
  await b.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  t.equal(await b.page.getByRole('link', { name: /Weekend plans/ }).count(), 0, 'B left: the group is gone from B\'s list');

  // A unsends; B reports; B, made a moderator by a DBA, dismisses.
  await openChat(a.page, bobId, 'bob_ui');
  await say(a.page, 'Oops, wrong chat');
  a.page.once('dialog', (d) => void d.accept());
  await act(a.page, 'Oops, wrong chat', 'Unsend');
  await a.page.getByText('You unsent this message.').waitFor();
  await openChat(b.page, aliceId, 'alice_ui');
  await b.page.getByText('This message was unsent.').waitFor();
  t.equal(await b.page.getByText('Oops, wrong chat').count(), 0, 'B never sees the unsent words');
  await act(b.page, 'Hello Bob (edited)', 'Report');
  await b.page.getByLabel(/Why are you reporting/).fill('testing the report button');
  await b.page.getByRole('button', { name: 'Send report' }).click();
  await b.page.getByText('Reported. A moderator will look at it.').waitFor();
  t.notOk(await b.page.locator('#moderation-link').isVisible(), 'no moderation page for a user');
  await admin.query(`update app_public.users set is_moderator = true where username = 'bob_ui'`);
  await b.page.reload();
  await b.page.locator('#moderation-link').click();
  const item = b.page.locator('#reports li', { hasText: 'testing the report button' });
  await item.waitFor();
  t.ok(await item.getByText('Hello Bob (edited)').isVisible(), 'the moderator sees the words as reported');
  await item.getByRole('button', { name: 'Dismiss' }).click();
  await b.page.getByText('No open reports.').waitFor();
  t.pass('and dismisses the report');

  // The export, from the account page.
  await a.page.goto(`${base}/#/account`);
  t.equal(await a.page.getByRole('link', { name: 'Download all my data' }).getAttribute('href'), '/me/export');
  const exported = await a.page.evaluate(async () => (await fetch('/me/export')).text());
  const lines = exported.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; counts?: { messages: number }; message?: { content: string } });
  t.ok(lines.some((l) => l.message?.content === 'Hello from Carol'), 'the export holds Carol\'s message to A');

  // The API's documentation page loads without console errors (its CSP allows what it runs).
  const docs = await a.ctx.newPage();
  watch(docs);
  await docs.goto(`${base}/docs`);
  await docs.locator('.swagger-ui .info').waitFor();
  await docs.waitForTimeout(300);
  await docs.close();

  // A deletes the account while B has their conversation open: B is told there and then.
  await openChat(b.page, aliceId, 'alice_ui');
  await msg(b.page, 'Hello Bob (edited)').waitFor();
  await a.page.goto(`${base}/#/account`);
  a.page.once('dialog', (d) => void d.accept());
  await a.page.getByLabel('Confirm with your password').fill('correct horse battery');
  await a.page.getByRole('button', { name: 'Delete my account' }).click();
  await a.page.getByRole('heading', { name: 'Log in' }).waitFor();
  t.pass('A is signed out after deleting the account');
  await b.page.getByText(/account was deleted/).waitFor();
  t.pass('B\'s open conversation says the account was deleted, without a reload');
  t.ok(await composer(b.page).isDisabled(), 'and its composer is closed');
  t.equal(await b.page.locator('.chat article').count(), 0, 'the deleted account\'s messages are gone from the view');
  await shot(b.page, '08-partner-deleted', true);
  await b.page.goto(`${base}/#/conversations`);
  await b.page.getByRole('heading', { name: 'Conversations' }).waitFor();
  t.equal(await b.page.getByText('alice_ui').count(), 0, 'B\'s conversation with A is gone from the list');

  t.strictSame(consoleErrors, [], 'no console errors on any page');
});
