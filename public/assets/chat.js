// A conversation as a chat (direct and group alike): the newest messages at
// the bottom and the composer under them; the view follows new messages
// unless the reader scrolled up; older pages load as the reader scrolls up,
// all the way to the first message (the page's cursor); days separated; a
// sender's name and time once per run of their messages. Live events update
// the messages they carry in place: no reload per event.

import { api, ApiError, attempt } from './api.js';
import { formValues, h, when } from './dom.js';
import { nameOf, state } from './state.js';

const PAGE = 50;
/** Messages of one sender closer than this stay one run (one name, one time). */
const RUN_GAP_MS = 5 * 60_000;
/** Within this many pixels of the bottom, the view follows new messages. */
const NEAR_BOTTOM_PX = 80;

const dayKey = (d) => `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
const timeOf = (d) => d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
function dayLabel(d) {
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return d.toLocaleDateString(undefined, {
    weekday: 'long', day: 'numeric', month: 'long', ...(d.getFullYear() === today.getFullYear() ? {} : { year: 'numeric' }),
  });
}
const who = (id) => (id === state.me.id ? 'You' : nameOf(id));
const snippet = (m) => (m.deletedAt ? 'an unsent message' : m.content.length > 80 ? `${m.content.slice(0, 80)}…` : m.content);
const bySending = (a, b) => (a.sentAt < b.sentAt ? -1 : a.sentAt > b.sentAt ? 1 : a.id - b.id);

/**
 * The chat of one conversation.
 *
 *   url        its page (`/conversations/7/messages`): newest first, ?before=cursor
 *   label      the composer's label ("Message to bob")
 *   send       (content, parentMessageId) => the sent message (POST /messages)
 *   belongs    (message) => whether a live event's message is in this chat
 *   onIncoming called when someone else's message arrives (the view reads it)
 *
 * Returns { element, start, onMessages, close }.
 */
export function chat({ url, label, send, belongs, onIncoming }) {
  const messages = new Map(); // id → message
  const built = new Map(); // id → { key, el }: unchanged messages keep their element (an open form stays open)
  const days = new Map(); // day → separator element
  let cursor; // the oldest page's nextCursor: null once the first message is here
  let older = null; // the running load of an older page
  let context = null; // { kind: 'reply' | 'edit', message }
  let closed = false; // the conversation ended (an account deletion)

  const topButton = h('button', { type: 'button', class: 'secondary', onclick: () => attempt(loadOlder) }, 'Load earlier messages');
  const top = h('div', { class: 'chat-top meta', role: 'status' });
  const list = h('div', { class: 'chat-list' });
  const log = h('div', { class: 'chat-log', role: 'log', 'aria-label': 'Messages', tabindex: 0 }, top, list);
  const jump = h('button', { type: 'button', class: 'jump', hidden: true, onclick: () => toBottom() }, 'New messages ↓');
  const notice = h('p', { class: 'notice', role: 'status', hidden: true });
  const contextBar = h('div', { class: 'composer-context', hidden: true });
  const input = h('textarea', {
    name: 'content', rows: 1, required: true, maxlength: 10000, 'aria-label': label, placeholder: label,
    'aria-describedby': 'composer-hint', enterkeyhint: 'send',
  });
  const sendButton = h('button', { type: 'submit' }, 'Send');
  const composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); attempt(submit); } },
    contextBar,
    h('div', { class: 'composer-row' }, input, sendButton),
    h('p', { class: 'hint meta', id: 'composer-hint' }, 'Enter sends · Shift+Enter makes a new line'),
  );
  const element = h('section', { class: 'chat' }, log, jump, notice, composer);

  // Enter sends, Shift+Enter is a newline (and an IME's Enter composes).
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    } else if (e.key === 'Escape' && context) {
      setContext(null);
    }
  });
  // The field grows with its text, up to a third of the screen (CSS max-height).
  input.addEventListener('input', () => {
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight + 2}px`;
  });
  log.addEventListener('scroll', () => {
    if (log.scrollTop < 200 && cursor !== null && cursor !== undefined) attempt(loadOlder);
    if (nearBottom()) jump.hidden = true;
  }, { passive: true });

  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  function toBottom() {
    log.scrollTop = log.scrollHeight;
    jump.hidden = true;
  }

  function setContext(next) {
    context = next;
    contextBar.hidden = !next;
    if (!next) {
      contextBar.replaceChildren();
      sendButton.textContent = 'Send';
      return;
    }
    const m = next.message;
    contextBar.replaceChildren(
      h('span', {}, next.kind === 'reply' ? `Replying to ${who(m.senderId)}: ` : 'Editing your message: ', h('em', {}, snippet(m))),
      h('button', { type: 'button', class: 'secondary', onclick: () => setContext(null) }, 'Cancel'),
    );
    sendButton.textContent = next.kind === 'edit' ? 'Save' : 'Send';
    if (next.kind === 'edit') input.value = m.content;
    input.dispatchEvent(new Event('input'));
    input.focus();
  }

  async function submit() {
    const content = input.value;
    if (!content.trim()) return;
    const sent = context?.kind === 'edit'
      ? await api('PATCH', `/messages/${context.message.id}`, { content })
      : await send(content, context?.kind === 'reply' ? context.message.id : null);
    input.value = '';
    input.dispatchEvent(new Event('input'));
    setContext(null);
    upsert([sent], 'bottom');
  }

  /** Adds or replaces messages, then shows them; `mode`: where the view goes. */
  function upsert(list, mode = 'follow') {
    for (const m of list) {
      const known = messages.get(m.id);
      // A reply new to this view counts on its parent here (the parent's
      // own row says so at the next page load).
      const parent = known || m.parentMessageId === null ? undefined : messages.get(m.parentMessageId);
      if (parent && m.replyCount !== undefined) messages.set(parent.id, { ...parent, replyCount: parent.replyCount + 1 });
      messages.set(m.id, { ...known, ...m });
    }
    show(mode);
  }

  function show(mode) {
    const before = { top: log.scrollTop, height: log.scrollHeight, atBottom: nearBottom() };
    const lastBefore = list.lastElementChild;
    const sorted = [...messages.values()].sort(bySending);
    const desired = [];
    let previous = null;
    for (const m of sorted) {
      const sentAt = new Date(m.sentAt);
      const day = dayKey(sentAt);
      const newDay = !previous || dayKey(new Date(previous.sentAt)) !== day;
      if (newDay) {
        if (!days.has(day)) days.set(day, h('h3', { class: 'day', role: 'separator' }, h('span', {}, dayLabel(sentAt))));
        desired.push(days.get(day));
      }
      const head = newDay || previous.senderId !== m.senderId || sentAt - new Date(previous.sentAt) > RUN_GAP_MS;
      desired.push(messageElement(m, head));
      previous = m;
    }
    if (!desired.length && !closed) desired.push(h('p', { class: 'meta empty' }, 'No messages yet. Say hello.'));
    // Move only what changed: untouched elements keep their state and focus.
    let at = list.firstChild;
    for (const node of desired) {
      if (node === at) at = at.nextSibling;
      else list.insertBefore(node, at);
    }
    while (at) {
      const next = at.nextSibling;
      at.remove();
      at = next;
    }
    showTop();
    if (mode === 'older') log.scrollTop = log.scrollHeight - before.height + before.top;
    else if (mode === 'bottom' || before.atBottom) toBottom();
    else if (list.lastElementChild !== lastBefore) jump.hidden = false;
    // A short first page does not fill the view: there is nothing to
    // scroll, so load on until it does or the first message is here.
    if (cursor !== null && cursor !== undefined && log.scrollHeight <= log.clientHeight) attempt(loadOlder);
  }

  function showTop() {
    if (closed) top.replaceChildren();
    else if (cursor === null) top.replaceChildren('This is the beginning of the conversation.');
    else if (older) top.replaceChildren('Loading earlier messages…');
    else top.replaceChildren(topButton);
  }

  function messageElement(m, head) {
    const parent = m.parentMessageId === null ? undefined : messages.get(m.parentMessageId);
    const key = JSON.stringify([m.content, m.edited, m.deletedAt, m.read, m.replyCount, head, parent ? snippet(parent) : null, parent?.senderId]);
    const known = built.get(m.id);
    if (known?.key === key) return known.el;
    const el = buildMessage(m, head, parent);
    built.set(m.id, { key, el });
    return el;
  }

  function buildMessage(m, head, parent) {
    const mine = m.senderId === state.me.id;
    const gone = m.deletedAt !== null && m.deletedAt !== undefined;
    const sentAt = new Date(m.sentAt);
    const extra = h('div', { class: 'extra' });
    const actions = [];
    const close = (e) => e.target.closest('details')?.removeAttribute('open');
    const action = (text, run) => h('button', { type: 'button', class: 'secondary', onclick: (e) => { close(e); attempt(run); } }, text);
    if (!gone) actions.push(action('Reply', async () => setContext({ kind: 'reply', message: m })));
    if (mine && !gone) {
      actions.push(action('Edit', async () => setContext({ kind: 'edit', message: m })));
      actions.push(action('Unsend', async () => {
        if (!window.confirm('Unsend this message? Its words are deleted for everyone; replies stay.')) return;
        await api('DELETE', `/messages/${m.id}`);
        upsert([{ ...m, content: null, deletedAt: new Date().toISOString() }]);
      }));
    }
    if (!mine && !gone) actions.push(action('Report', async () => extra.replaceChildren(reportForm(m, extra))));
    if (m.edited && !gone) actions.push(action('History', async () => extra.replaceChildren(...await historyOf(m))));
    if (m.replyCount > 0 || m.parentMessageId !== null) {
      actions.push(h('a', { href: `#/t/${m.id}`, class: 'button-like' }, 'Open thread'));
    }
    const quote = m.parentMessageId === null ? null : h('button', {
      type: 'button', class: 'quote',
      onclick: () => (parent ? reveal(parent.id) : (location.hash = `#/t/${m.id}`)),
    }, parent ? `↪ ${who(parent.senderId)}: ${snippet(parent)}` : '↪ a reply to an earlier message');
    return h('article', {
      class: `message${mine ? ' mine' : ''}${head ? ' head' : ''}`,
      'aria-label': `${who(m.senderId)}, ${timeOf(sentAt)}`,
      title: when(m.sentAt),
      dataset: { messageId: m.id, senderId: m.senderId, sentAt: m.sentAt },
    },
      head ? h('div', { class: 'meta sender' }, h('strong', {}, who(m.senderId)), ' ', h('time', { datetime: m.sentAt }, timeOf(sentAt))) : null,
      quote,
      gone
        ? h('div', { class: 'content unsent' }, mine ? 'You unsent this message.' : 'This message was unsent.')
        : h('div', { class: 'content' }, m.content),
      // One line under the words: markers, then the actions behind "⋯".
      h('div', { class: 'foot meta' },
        m.edited && !gone ? h('span', { class: 'edited' }, 'edited') : null,
        mine && m.read ? h('span', { class: 'receipt', title: `read ${when(m.readAt)}` }, 'Read') : null,
        m.replyCount > 0 ? h('a', { href: `#/t/${m.id}` }, `${m.replyCount} ${m.replyCount === 1 ? 'reply' : 'replies'}`) : null,
        actions.length
          ? h('details', { class: 'more' }, h('summary', { 'aria-label': 'Message actions', title: 'Message actions' }, '⋯'), h('div', { class: 'actions' }, actions))
          : null,
      ),
      extra,
    );
  }

  /** Scrolls to a loaded message and marks it for a moment. */
  function reveal(id) {
    const el = built.get(id)?.el;
    if (!el) return;
    el.scrollIntoView({ block: 'center' });
    el.classList.add('flash');
    setTimeout(() => el.classList.remove('flash'), 1500);
  }

  async function loadOlder() {
    if (cursor === null || cursor === undefined) return;
    if (older) return older;
    older = api('GET', `${url}?limit=${PAGE}&before=${cursor}`).finally(() => (older = null));
    showTop();
    try {
      const page = await older;
      cursor = page.nextCursor;
      upsert(page.messages, 'older');
    } finally {
      showTop();
    }
  }

  /** The newest page again (a batch too large to carry, or a reconnect). */
  async function refreshNewest() {
    const page = await api('GET', `${url}?limit=${PAGE}`);
    if (cursor === undefined) cursor = page.nextCursor;
    upsert(page.messages);
  }

  return {
    element,
    async start() {
      await refreshNewest();
      toBottom();
      input.focus({ preventScroll: true });
    },
    /** A live event: the messages it carries that are in this chat, in place. */
    onMessages(type, batch) {
      if (composer.inert) return;
      if (batch.count > batch.messages.length) {
        attempt(refreshNewest);
        return;
      }
      if (type === 'message.read') {
        const receipts = batch.messages.filter((r) => messages.has(r.id));
        if (receipts.length) upsert(receipts.map((r) => ({ id: r.id, read: true, readAt: r.readAt })));
        return;
      }
      const mine = batch.messages.filter(belongs);
      if (!mine.length) return;
      upsert(mine);
      if (type === 'message.created' && mine.some((m) => m.senderId !== state.me.id)) onIncoming?.();
    },
    /** The conversation ended under the reader (an account deletion): say so, nothing more to send. */
    close(text, { clear = false } = {}) {
      closed = true;
      if (clear) {
        messages.clear();
        cursor = null;
        show('follow');
      }
      notice.textContent = text;
      notice.hidden = false;
      input.disabled = true;
      sendButton.disabled = true;
      composer.inert = true;
    },
  };
}

function reportForm(m, extra) {
  return h('form', {
    class: 'inline',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => {
        await api('POST', `/messages/${m.id}/report`, { reason: formValues(e.target).reason });
        extra.replaceChildren(h('p', { class: 'meta', role: 'status' }, 'Reported. A moderator will look at it.'));
      });
    },
  },
    h('label', {}, 'Why are you reporting this message?', h('textarea', { name: 'reason', required: true, maxlength: 1000 })),
    h('button', { type: 'submit' }, 'Send report'),
    h('button', { type: 'button', class: 'secondary', onclick: () => extra.replaceChildren() }, 'Cancel'),
  );
}

async function historyOf(m) {
  const history = await api('GET', `/messages/${m.id}/history`);
  const editor = (id) => (id === null ? 'someone since deleted' : id === state.me.id ? 'you' : nameOf(id));
  return [
    h('h4', { class: 'meta' }, 'Earlier versions'),
    h('ol', { class: 'history' }, history.versions.map((v) =>
      h('li', {}, h('div', { class: 'content' }, v.oldContent),
        h('div', { class: 'meta' }, `replaced ${when(v.editedAt)} by ${editor(v.editedBy)}`)))),
  ];
}

/** Whether an API error says the other side of the conversation is gone. */
export const isGone = (error) => error instanceof ApiError && error.status === 404;
