// The views: each renders the main area from one or two requests and may
// return { onMessages, onAccountDeleted } to react to live events.

import { actionButton, api, attempt } from './api.js';
import { chat, isGone } from './chat.js';
import { formValues, h, render, when } from './dom.js';
import { markAllRead, refreshCounts } from './live.js';
import { newGroupForm } from './groups.js';
import { route, signedIn, signedOut } from './session.js';
import { learnNames, nameOf, state, userNamed } from './state.js';

export function authView() {
  const login = h('form', {
    'aria-labelledby': 'login-title',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => signedIn((await api('POST', '/auth/login', formValues(e.target))).user));
    },
  },
    h('h2', { id: 'login-title' }, 'Log in'),
    h('label', {}, 'Username', h('input', { name: 'username', autocomplete: 'username', required: true })),
    h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Log in'),
  );
  const register = h('form', {
    'aria-labelledby': 'register-title',
    onsubmit: (e) => {
      e.preventDefault();
      const values = formValues(e.target);
      if (!values.displayName) delete values.displayName;
      attempt(async () => signedIn((await api('POST', '/auth/register', values)).user));
    },
  },
    h('h2', { id: 'register-title' }, 'Create an account'),
    h('label', {}, 'Username (3–32 of a–z, 0–9, _)', h('input', { name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32 })),
    h('label', {}, 'Display name (optional)', h('input', { name: 'displayName', maxlength: 100 })),
    h('label', {}, 'Password (at least 8 characters)', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 })),
    h('button', { type: 'submit' }, 'Create account'),
  );
  render(h('div', { class: 'two' }, login, register));
}

export async function conversationsView() {
  const data = await api('GET', '/conversations');
  const start = h('form', {
    class: 'inline',
    'aria-labelledby': 'start-title',
    onsubmit: (e) => {
      e.preventDefault();
      const { username, content } = formValues(e.target);
      attempt(async () => {
        const user = await userNamed(username);
        await api('POST', '/messages', { receiverId: user.id, content });
        location.hash = `#/c/${user.id}`;
      });
    },
  },
    h('h2', { id: 'start-title' }, 'Start a conversation'),
    h('label', {}, 'Username', h('input', { name: 'username', required: true, autocomplete: 'off' })),
    h('label', {}, 'Message', h('input', { name: 'content', required: true, maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Send'),
  );
  const unread = data.conversations.filter((c) => c.unreadCount > 0);
  const items = data.conversations.map((c) => {
    if (c.user) state.users.set(c.user.id, c.user.displayName || c.user.username);
    const from = c.lastMessage.senderId === state.me.id ? 'You: ' : c.group ? `${nameOf(c.lastMessage.senderId)}: ` : '';
    const link = c.group
      ? h('a', { href: `#/g/${c.group.id}` }, h('strong', {}, c.group.title), h('span', { class: 'meta' }, ' · group'))
      : h('a', { href: `#/c/${c.user.id}` }, h('strong', {}, c.user.displayName || c.user.username));
    return h('li', { class: `item${c.unreadCount ? ' unread' : ''}`, dataset: c.group ? { groupId: c.group.id } : { userId: c.user.id } },
      h('div', { class: 'item-head' },
        link,
        h('time', { class: 'meta', datetime: c.lastMessage.sentAt, title: when(c.lastMessage.sentAt) }, shortWhen(c.lastMessage.sentAt)),
      ),
      h('div', { class: 'item-body' },
        h('div', { class: 'content preview' }, from + (c.lastMessage.content ?? '(unsent)').slice(0, 140)),
        c.unreadCount ? h('span', { class: 'count badge', 'aria-label': `${c.unreadCount} unread` }, String(c.unreadCount)) : null,
      ),
    );
  });
  render(
    h('div', { class: 'heading-row' },
      h('h2', {}, 'Conversations'),
      unread.length
        ? actionButton('Mark all read', async () => {
          await markAllRead(unread);
          await route();
        })
        : null,
    ),
    items.length ? h('ul', { class: 'list', id: 'conversations' }, items) : h('p', { class: 'meta' }, 'No conversations yet. Start one below.'),
    h('div', { class: 'two starts' }, start, newGroupForm()),
  );
  // Any live change to a conversation of mine reorders or recounts the list.
  let pending = null;
  const again = () => {
    pending ??= setTimeout(() => attempt(route), 150);
  };
  return { onMessages: again, onAccountDeleted: again };
}

/** A list's time: the hour today, the date before. */
function shortWhen(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString()
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
}

/**
 * A direct conversation as a chat (chat.js). Opening it reads what the
 * partner sent; so does each message of theirs that arrives while it is
 * open. When the partner deletes their account the view says so and the
 * composer closes (the live event account.deleted, or a send that finds
 * nobody).
 */
export async function conversationView(partnerId) {
  await learnNames([partnerId]);
  const title = nameOf(partnerId);
  const gone = () => {
    view.close(`${title}'s account was deleted, and their messages with it. You cannot reply.`, { clear: true });
    blockButton.remove();
  };
  const view = chat({
    url: `/conversations/${partnerId}/messages`,
    label: `Message to ${title}`,
    send: async (content, parentMessageId) => {
      try {
        return await api('POST', '/messages', parentMessageId ? { parentMessageId, content } : { receiverId: partnerId, content });
      } catch (error) {
        if (isGone(error) && !parentMessageId) gone();
        throw error;
      }
    },
    belongs: (m) => m.groupId === null && (m.senderId === partnerId || m.receiverId === partnerId),
    onIncoming: () => readConversation(partnerId),
  });
  // Blocking: their messages to you are refused by the database (403 BLOCKED).
  const blocked = (await api('GET', '/me/blocks')).blocks.some((b) => b.user.id === partnerId);
  const blockButton = actionButton(blocked ? `Unblock ${title}` : `Block ${title}`, async () => {
    await api(blocked ? 'DELETE' : 'POST', `/users/${partnerId}/block`);
    await route();
  });
  render(
    h('div', { class: 'chat-head' }, h('h2', {}, title), blockButton),
    view.element,
  );
  try {
    await view.start();
  } catch (error) {
    if (!isGone(error)) throw error;
    gone();
    return null;
  }
  await readConversation(partnerId);
  return {
    onMessages: view.onMessages,
    onAccountDeleted: (userId) => {
      if (userId === partnerId) gone();
    },
  };
}

/** Marks what the partner sent read (the view is open) and updates the count. */
async function readConversation(partnerId) {
  await api('POST', `/conversations/${partnerId}/read`).catch(() => {});
  refreshCounts();
}

/**
 * One thread as a tree (GET /messages/:id/thread: one recursive query per
 * page): every reply under its parent, a reply form on each message.
 */
export async function threadView(messageId) {
  const repliesOf = new Map(); // message id → the element its replies go in
  const container = h('div', { class: 'tree' });
  const more = h('div');
  const nodeOf = (m) => {
    const replies = h('div', { class: 'replies' });
    const extra = h('div');
    const mine = m.senderId === state.me.id;
    const gone = m.deletedAt !== null;
    const replyForm = () => h('form', {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        attempt(async () => {
          await api('POST', '/messages', { parentMessageId: m.id, content: formValues(e.target).content });
          await route();
        });
      },
    },
      h('label', {}, 'Reply', h('textarea', { name: 'content', required: true, maxlength: 10000 })),
      h('button', { type: 'submit' }, 'Send reply'),
    );
    repliesOf.set(m.id, replies);
    return h('div', { class: 'node' },
      h('article', { class: `message${mine ? ' mine' : ''}${m.id === messageId ? ' chosen' : ''}`, dataset: { messageId: m.id } },
        h('div', { class: 'meta sender' },
          h('strong', {}, mine ? 'You' : nameOf(m.senderId)), ' · ', when(m.sentAt),
          m.edited && !gone ? h('span', { class: 'edited' }, ' · edited') : null),
        gone ? h('div', { class: 'content unsent' }, 'This message was unsent.') : h('div', { class: 'content' }, m.content),
        gone ? null : h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'secondary',
          onclick: () => {
            if (extra.firstChild) return extra.replaceChildren();
            extra.replaceChildren(replyForm());
            extra.querySelector('textarea').focus();
          },
        }, 'Reply')),
        extra,
      ),
      replies,
    );
  };
  const attach = (node, into) => {
    into.append(nodeOf(node));
    for (const r of node.replies) attach(r, repliesOf.get(node.id));
  };
  const load = async (after) => {
    const page = await api('GET', `/messages/${messageId}/thread?limit=500${after ? `&after=${after}` : ''}`);
    if (page.root) attach(page.root, container);
    for (const c of page.continued) attach(c, repliesOf.get(c.parentMessageId) ?? container);
    more.replaceChildren(page.nextCursor ? actionButton('More replies', () => load(page.nextCursor)) : '');
    return page;
  };
  const { root } = await load();
  const partner = root && root.groupId === null ? (root.senderId === state.me.id ? root.receiverId : root.senderId) : null;
  await learnNames(partner === null ? [] : [partner]);
  const back = root?.groupId ? `#/g/${root.groupId}` : partner !== null ? `#/c/${partner}` : '#/conversations';
  render(
    h('div', { class: 'chat-head' }, h('h2', {}, 'Thread'), h('a', { href: back }, 'Back to the conversation')),
    container,
    more,
  );
  return null;
}

/** A search snippet: segments of plain text, the matches in <mark> (text nodes only, never HTML). */
const snippetNode = (segments) =>
  h('div', { class: 'content' }, segments.map((s) => (s.match ? h('mark', {}, s.text) : document.createTextNode(s.text))));

export async function searchView(params) {
  const q = params.get('q') ?? '';
  const after = params.get('after');
  const form = h('form', {
    class: 'inline',
    role: 'search',
    'aria-labelledby': 'search-title',
    onsubmit: (e) => {
      e.preventDefault();
      const text = formValues(e.target).q.trim();
      if (text) location.hash = `#/search?${new URLSearchParams({ q: text })}`;
    },
  },
    h('label', {}, 'Words, "a phrase", or, -without',
      h('input', { name: 'q', type: 'search', value: q, maxlength: 200, required: true, autocomplete: 'off' })),
    h('button', { type: 'submit' }, 'Search'),
  );
  if (!q) {
    render(h('h2', { id: 'search-title' }, 'Search your messages'), form);
    return null;
  }
  const data = await api('GET', `/search?${new URLSearchParams({ q, ...(after ? { after } : {}) })}`);
  await learnNames(data.results.flatMap((r) => [r.message.senderId, r.message.receiverId ?? r.message.senderId]));
  const partnerOf = (m) => (m.senderId === state.me.id ? m.receiverId : m.senderId);
  const who = (id) => (id === state.me.id ? 'You' : nameOf(id));
  render(
    h('h2', { id: 'search-title' }, 'Search your messages'),
    form,
    data.results.length
      ? h('ul', { class: 'list results' }, data.results.map(({ message: m, snippet }) =>
        h('li', { class: 'item' },
          h('strong', {}, m.groupId ? `${who(m.senderId)} → a group` : `${who(m.senderId)} → ${who(m.receiverId)}`), ' ',
          h('span', { class: 'meta' }, when(m.sentAt)),
          snippetNode(snippet),
          h('div', { class: 'actions' }, h('a', { href: m.groupId ? `#/g/${m.groupId}` : `#/c/${partnerOf(m)}` }, 'Open conversation')))))
      : h('p', { class: 'meta' }, 'No messages match.'),
    data.nextCursor ? h('p', {}, h('a', { href: `#/search?${new URLSearchParams({ q, after: data.nextCursor })}` }, 'More results')) : '',
  );
  return null;
}

export function accountView() {
  render(
    h('h2', {}, 'Account'),
    h('p', {}, `Signed in as ${state.me.username}${state.me.displayName ? ` (${state.me.displayName})` : ''}.`),
    h('p', {},
      h('a', { href: '/me/export', download: 'signalbox-export.ndjson' }, 'Download all my data'),
      h('span', { class: 'meta' }, ' (every message you sent or received, your edits, notifications and blocks, as NDJSON)'),
    ),
    h('form', {
      'aria-labelledby': 'delete-title',
      onsubmit: (e) => {
        e.preventDefault();
        if (!window.confirm('Delete your account and all your messages? This cannot be undone.')) return;
        attempt(async () => {
          await api('DELETE', '/me', { password: formValues(e.target).password });
          signedOut();
        });
      },
    },
      h('h3', { id: 'delete-title' }, 'Delete account'),
      h('p', { class: 'meta' }, 'Your messages, their history and your notifications are deleted with it, for everyone.'),
      h('label', {}, 'Confirm with your password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
      h('button', { type: 'submit', class: 'danger' }, 'Delete my account'),
    ),
  );
  return {};
}
