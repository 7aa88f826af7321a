// The views: each renders the main area from one or two requests and may
// return { onNotification } to react to live events.

import { actionButton, api, ApiError, attempt } from './api.js';
import { formValues, h, render, when } from './dom.js';
import { refreshCounts } from './live.js';
import { newGroupForm } from './groups.js';
import { route, signedIn, signedOut } from './session.js';
import { learnNames, nameOf, state } from './state.js';

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
        const user = await api('GET', `/users/${encodeURIComponent(username.trim())}`).catch((error) => {
          if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
            throw new ApiError(404, { message: `nobody is called "${username.trim()}"; check the username` }, true);
          }
          throw error;
        });
        await api('POST', '/messages', { receiverId: user.id, content });
        state.users.set(user.id, user.displayName || user.username);
        location.hash = `#/c/${user.id}`;
      });
    },
  },
    h('h2', { id: 'start-title' }, 'Start a conversation'),
    h('label', {}, 'Username', h('input', { name: 'username', required: true, autocomplete: 'off' })),
    h('label', {}, 'Message', h('input', { name: 'content', required: true, maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Send'),
  );
  const items = data.conversations.map((c) => {
    if (c.user) state.users.set(c.user.id, c.user.displayName || c.user.username);
    const from = c.lastMessage.senderId === state.me.id ? 'You: ' : c.group ? `${nameOf(c.lastMessage.senderId)}: ` : '';
    const link = c.group
      ? h('a', { href: `#/g/${c.group.id}` }, h('strong', {}, c.group.title), h('span', { class: 'meta' }, ' · group'))
      : h('a', { href: `#/c/${c.user.id}` }, h('strong', {}, c.user.displayName || c.user.username));
    return h('li', { class: `item${c.unreadCount ? ' unread' : ''}`, dataset: c.group ? { groupId: c.group.id } : { userId: c.user.id } },
      link,
      c.unreadCount ? h('span', { class: 'count badge' }, `${c.unreadCount} unread`) : null,
      h('div', { class: 'content' }, from + (c.lastMessage.content ?? '(unsent)').slice(0, 140)),
      h('div', { class: 'meta' }, when(c.lastMessage.sentAt)),
    );
  });
  render(
    h('div', { class: 'two' }, start, newGroupForm()),
    h('h2', {}, 'Conversations'),
    items.length ? h('ul', { class: 'list', id: 'conversations' }, items) : h('p', { class: 'meta' }, 'No conversations yet.'),
  );
  return { onNotification: () => route() };
}

/** One message and its replies, with the actions the caller may take. */
function messageNode(node, reload) {
  const mine = node.senderId === state.me.id;
  const gone = node.deletedAt !== null && node.deletedAt !== undefined;
  const canRead = node.receiverId === state.me.id && !node.read && !gone;
  const body = gone
    ? h('div', { class: 'content unsent' }, mine ? 'You unsent this message.' : 'This message was unsent.')
    : h('div', { class: 'content' }, node.content);
  const actions = h('div', { class: 'actions' });
  const extra = h('div');
  const el = h('article', {
    class: `message${mine ? ' mine' : ''}${canRead ? ' unread' : ''}`,
    'aria-label': `Message from ${mine ? 'you' : state.users.get(node.senderId) ?? 'them'}`,
    dataset: { messageId: node.id },
  },
    h('div', { class: 'meta' },
      h('strong', {}, mine ? 'You' : state.users.get(node.senderId) ?? `user #${node.senderId}`), ' · ', when(node.sentAt),
      node.edited ? h('span', { class: 'edited' }, ' · edited') : null,
      mine && node.read ? h('span', { class: 'receipt', title: `read ${when(node.readAt)}` }, ' · read') : null,
      node.earlierParent ? ' · in reply to an earlier message' : null,
    ),
    body, actions, extra,
  );

  const replyForm = () => h('form', {
    class: 'inline',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => {
        await api('POST', '/messages', { parentMessageId: node.id, content: formValues(e.target).content });
        await reload();
      });
    },
  },
    h('label', {}, 'Reply', h('textarea', { name: 'content', required: true, maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Send reply'),
  );
  const editForm = () => h('form', {
    class: 'inline',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => {
        await api('PATCH', `/messages/${node.id}`, { content: formValues(e.target).content });
        await reload();
      });
    },
  },
    h('label', {}, 'Edit message', h('textarea', { name: 'content', required: true, maxlength: 10000 }, node.content)),
    h('button', { type: 'submit' }, 'Save'),
  );
  const toggle = (make) => () => {
    if (extra.firstChild) extra.replaceChildren();
    else {
      extra.replaceChildren(make());
      extra.querySelector('textarea, button')?.focus();
    }
  };

  actions.append(h('button', { type: 'button', class: 'secondary', onclick: toggle(replyForm) }, 'Reply'));
  if (mine && !gone) {
    actions.append(h('button', { type: 'button', class: 'secondary', onclick: toggle(editForm) }, 'Edit'));
    actions.append(actionButton('Unsend', async () => {
      if (!window.confirm('Unsend this message? Its words are deleted for everyone; replies stay.')) return;
      await api('DELETE', `/messages/${node.id}`);
      await reload();
    }));
  }
  if (!mine && !gone) {
    const reportForm = () => h('form', {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        attempt(async () => {
          await api('POST', `/messages/${node.id}/report`, { reason: formValues(e.target).reason });
          extra.replaceChildren(h('p', { class: 'meta', role: 'status' }, 'Reported. A moderator will look at it.'));
        });
      },
    },
      h('label', {}, 'Why are you reporting this message?', h('textarea', { name: 'reason', required: true, maxlength: 1000 })),
      h('button', { type: 'submit' }, 'Send report'),
    );
    actions.append(h('button', { type: 'button', class: 'secondary', onclick: toggle(reportForm) }, 'Report'));
  }
  if (node.edited && !gone) {
    const editor = (id) => (id === null ? 'someone since deleted' : id === state.me.id ? 'you' : state.users.get(id) ?? `user #${id}`);
    actions.append(actionButton('History', async () => {
      if (extra.firstChild) return extra.replaceChildren();
      const history = await api('GET', `/messages/${node.id}/history`);
      extra.replaceChildren(
        h('h3', { class: 'meta' }, 'Earlier versions'),
        h('ol', { class: 'history' }, history.versions.map((v) =>
          h('li', {}, h('div', { class: 'content' }, v.oldContent),
            h('div', { class: 'meta' }, `replaced ${when(v.editedAt)} by ${editor(v.editedBy)}`)))),
      );
    }));
  }
  if (canRead) {
    actions.append(actionButton('Mark read', async () => {
      await api('POST', `/messages/${node.id}/read`);
      await reload();
      refreshCounts();
    }));
  }
  const wrapper = h('div', { class: 'node' }, el);
  if (node.replies.length) wrapper.append(h('div', { class: 'replies' }, node.replies.map((r) => messageNode(r, reload))));
  return wrapper;
}

/**
 * The conversation's newest messages as trees, from ONE request: every
 * message of the page is in this conversation, so replies hang under their
 * parents by parentMessageId. A reply whose parent is older than the page
 * starts a tree of its own, marked as a reply. (Fetching each message's
 * thread was one request per thread, again on every live notification.)
 */
function treesOf(messages) {
  const byId = new Map(messages.map((m) => [m.id, { ...m, replies: [] }]));
  const roots = [];
  for (const node of [...byId.values()].sort((a, b) => a.id - b.id)) {
    const parent = node.parentMessageId === null ? undefined : byId.get(node.parentMessageId);
    if (parent) parent.replies.push(node);
    else {
      node.earlierParent = node.parentMessageId !== null;
      roots.push(node);
    }
  }
  return roots;
}

/**
 * A page of messages shown as threads (the element) and its reload: one
 * load at a time, and a request for another while one runs folds into one
 * more. The direct conversation and the group view share it.
 */
export function threadsOf(url) {
  const threads = h('div', { id: 'threads' });
  let loading = null;
  let again = false;
  const load = async () => {
    const page = await api('GET', url);
    const trees = treesOf(page.messages);
    threads.replaceChildren(...(trees.length
      ? trees.map((root) => h('section', { class: 'thread', 'aria-label': 'Thread' }, messageNode(root, reload)))
      : [h('p', { class: 'meta' }, 'No messages yet.')]));
  };
  const reload = async () => {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        await load();
      } while (again);
    })().finally(() => (loading = null));
    return loading;
  };
  return { threads, reload };
}

export async function conversationView(partnerId) {
  await learnNames([partnerId]);
  const title = state.users.get(partnerId) ?? `user #${partnerId}`;
  const { threads, reload } = threadsOf(`/conversations/${partnerId}/messages?limit=100`);
  const composer = h('form', {
    class: 'inline',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => {
        await api('POST', '/messages', { receiverId: partnerId, content: formValues(e.target).content });
        e.target.reset();
        await reload();
      });
    },
  },
    h('label', {}, `New message to ${title}`, h('textarea', { name: 'content', required: true, maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Send'),
  );
  // Blocking: their messages to you are refused by the database (403 BLOCKED).
  const blocked = (await api('GET', '/me/blocks')).blocks.some((b) => b.user.id === partnerId);
  render(
    h('h2', {}, `Conversation with ${title}`),
    h('div', { class: 'actions' },
      actionButton('Mark conversation read', async () => {
        await api('POST', `/conversations/${partnerId}/read`);
        await reload();
        refreshCounts();
      }),
      actionButton(blocked ? `Unblock ${title}` : `Block ${title}`, async () => {
        await api(blocked ? 'DELETE' : 'POST', `/users/${partnerId}/block`);
        await route();
      }),
    ),
    composer,
    threads,
  );
  // Opening a conversation reads what the partner sent.
  await api('POST', `/conversations/${partnerId}/read`);
  refreshCounts();
  await reload();
  const inThisConversation = (m) => m.senderId === partnerId || m.receiverId === partnerId;
  return {
    // A message from the partner: read it (the view is open) and show it.
    onNotification: (n) => {
      if (n.senderId !== partnerId) return;
      attempt(async () => {
        await api('POST', `/conversations/${partnerId}/read`);
        await reload();
        refreshCounts();
      });
    },
    // Live events: my messages sent elsewhere, edits by either of us, read
    // receipts for mine. (The partner's new messages come with their
    // notification, above.) A batch larger than its list reloads too.
    onMessages: (type, batch) => {
      const concerned = batch.count > batch.messages.length ||
        (type === 'message.read'
          ? batch.messages.some((r) => r.receiverId === partnerId)
          : batch.messages.some((m) => inThisConversation(m) && (type === 'message.edited' || m.senderId === state.me.id)));
      if (concerned) attempt(reload);
    },
  };
}

export async function inboxView() {
  const data = await api('GET', '/inbox/unread');
  await learnNames(data.messages.map((m) => m.senderId));
  render(
    h('h2', {}, `Unread messages (${data.unreadCount})`),
    data.messages.length
      ? h('ul', { class: 'list' }, data.messages.map((m) =>
        h('li', { class: 'item unread' },
          h('strong', {}, nameOf(m.senderId, m.senderUsername)), ' ', h('span', { class: 'meta' }, when(m.sentAt)),
          h('div', { class: 'content' }, m.preview),
          h('div', { class: 'actions' },
            h('a', { href: `#/c/${m.senderId}` }, 'Open conversation'),
            actionButton('Mark read', async () => {
              await api('POST', `/messages/${m.id}/read`);
              refreshCounts();
              route();
            }),
          ))))
      : h('p', { class: 'meta' }, 'Nothing unread.'),
  );
  return { onNotification: () => route() };
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

export async function notificationsView() {
  const data = await api('GET', '/notifications');
  await learnNames(data.notifications.map((n) => n.senderId));
  render(
    h('div', { class: 'heading-row' },
      h('h2', {}, 'Notifications'),
      actionButton('Mark all read', async () => {
        await api('POST', '/notifications/read-all');
        refreshCounts();
        route();
      }),
    ),
    data.notifications.length
      ? h('ul', { class: 'list', id: 'notifications' }, data.notifications.map((n) =>
        h('li', { class: `item${n.readAt ? '' : ' unread'}` },
          actionButton(`${n.kind === 'reply' ? 'Reply' : 'Message'} from ${state.users.get(n.senderId) ?? `user #${n.senderId}`}`, async () => {
            await api('POST', `/notifications/${n.id}/read`);
            refreshCounts();
            location.hash = n.groupId ? `#/g/${n.groupId}` : `#/c/${n.senderId}`;
          }),
          h('div', { class: 'content' }, n.preview),
          h('div', { class: 'meta' }, when(n.createdAt), n.readAt ? ' · read' : ' · unread'),
        )))
      : h('p', { class: 'meta' }, 'No notifications.'),
  );
  return { onNotification: () => route() };
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
