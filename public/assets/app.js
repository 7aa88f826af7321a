// signalbox web client: plain ES module, public API only. Authentication is
// the HttpOnly SameSite=Strict cookie set at login; this script never sees
// or stores a token. All user text goes through textContent (never HTML).

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const alertBox = document.getElementById('alert');
const inboxCount = document.getElementById('inbox-count');

const state = { me: null, users: new Map(), events: null, view: null };

// ---------------------------------------------------------------- helpers

/** Builds an element: h('button', { type: 'button', onclick }, 'text', child…). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function plainWords(status, body) {
  if (status === 0) return 'The server cannot be reached. Check your connection and try again.';
  if (status === 401) return body?.message === 'wrong username or password' ? 'Wrong username or password.' : 'Please sign in again.';
  if (status === 404) return 'That could not be found. It may have been deleted.';
  if (status === 409) return 'That username is already taken.';
  if (status === 413) return 'That is too long to send.';
  if (status === 429) return 'Too many attempts. Please wait a minute and try again.';
  if (status >= 500) return 'Something went wrong on our side. Please try again.';
  if (Array.isArray(body?.details) && body.details.length) {
    return body.details.map((d) => `${d.field.replace(/^body\./, '')}: ${d.message}`).join('. ') + '.';
  }
  return body?.message ? body.message.charAt(0).toUpperCase() + body.message.slice(1) + '.' : 'That did not work.';
}

function showError(message) {
  alertBox.textContent = message;
  alertBox.hidden = false;
}
function clearError() {
  alertBox.hidden = true;
  alertBox.textContent = '';
}

class ApiError extends Error {
  /** `exact`: the message is already the words to show. */
  constructor(status, body, exact = false) {
    super(exact ? body.message.charAt(0).toUpperCase() + body.message.slice(1) + '.' : plainWords(status, body));
    this.status = status;
  }
}

/** Calls the API with the session cookie; throws ApiError with plain words. */
async function api(method, url, body) {
  let res;
  try {
    res = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: {
        'X-Signalbox-Client': 'web',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0);
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && state.me && !url.startsWith('/auth/')) signedOut();
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Runs an action; shows its error in plain words instead of breaking the page. */
async function attempt(fn) {
  clearError();
  try {
    return await fn();
  } catch (error) {
    showError(error instanceof ApiError ? error.message : 'Something went wrong. Please try again.');
    if (!(error instanceof ApiError)) console.error(error);
    return undefined;
  }
}

/** A secondary button whose action runs through attempt(). */
function actionButton(label, action) {
  return h('button', { type: 'button', class: 'secondary', onclick: () => attempt(action) }, label);
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** How a person is named everywhere: display name, else username. */
function nameOf(userId, fallback) {
  return state.users.get(userId) ?? fallback ?? `user #${userId}`;
}

/** Learns the names of conversation partners (the API returns ids elsewhere). */
async function learnNames(ids) {
  if (ids.every((id) => state.users.has(id) || id === state.me.id)) return;
  const list = await api('GET', '/conversations?limit=100');
  for (const c of list.conversations) state.users.set(c.user.id, c.user.displayName || c.user.username);
}

function render(...nodes) {
  main.replaceChildren(...nodes);
}

// ---------------------------------------------------------------- session

async function start() {
  window.addEventListener('hashchange', route);
  document.getElementById('logout').addEventListener('click', () =>
    attempt(async () => {
      await api('POST', '/auth/logout');
      signedOut();
    }),
  );
  try {
    state.me = await api('GET', '/me');
  } catch {
    state.me = null;
  }
  if (state.me) signedIn(state.me);
  else route();
}

function signedIn(user) {
  state.me = user;
  nav.hidden = false;
  connectEvents();
  refreshCounts();
  if (!location.hash || location.hash.startsWith('#/login')) location.hash = '#/conversations';
  else route();
}

function signedOut() {
  state.me = null;
  state.users.clear();
  state.events?.close();
  state.events = null;
  nav.hidden = true;
  location.hash = '#/login';
  route();
}

function authView() {
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

// ---------------------------------------------------------------- live

function connectEvents() {
  if (state.events) return;
  // Same-origin EventSource sends the session cookie; it reconnects by
  // itself with Last-Event-ID, and the server replays what was missed.
  const events = new EventSource('/notifications/stream');
  events.addEventListener('notification', (e) => {
    const n = JSON.parse(e.data);
    refreshCounts();
    if (state.view?.onNotification) state.view.onNotification(n);
  });
  state.events = events;
}

async function refreshCounts() {
  if (!state.me) return;
  try {
    // One number in the navigation: unread messages (a message's
    // notification is read with it, so a second counter said the same).
    const inbox = await api('GET', '/inbox/unread?limit=1');
    inboxCount.textContent = inbox.unreadCount ? String(inbox.unreadCount) : '';
  } catch {
    // Counts are decoration; an error here must not break the page.
  }
}

// ---------------------------------------------------------------- views

async function conversationsView() {
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
    state.users.set(c.user.id, c.user.displayName || c.user.username);
    const from = c.lastMessage.senderId === state.me.id ? 'You: ' : '';
    return h('li', { class: `item${c.unreadCount ? ' unread' : ''}`, dataset: { userId: c.user.id } },
      h('a', { href: `#/c/${c.user.id}` }, h('strong', {}, c.user.displayName || c.user.username)),
      c.unreadCount ? h('span', { class: 'count badge' }, `${c.unreadCount} unread`) : null,
      h('div', { class: 'content' }, from + c.lastMessage.content.slice(0, 140)),
      h('div', { class: 'meta' }, when(c.lastMessage.sentAt)),
    );
  });
  render(
    start,
    h('h2', {}, 'Conversations'),
    items.length ? h('ul', { class: 'list', id: 'conversations' }, items) : h('p', { class: 'meta' }, 'No conversations yet.'),
  );
  return { onNotification: () => route() };
}

/** One message and its replies, with the actions the caller may take. */
function messageNode(node, partnerId, reload) {
  const mine = node.senderId === state.me.id;
  const canRead = node.receiverId === state.me.id && !node.read;
  const body = h('div', { class: 'content' }, node.content);
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
  if (mine) actions.append(h('button', { type: 'button', class: 'secondary', onclick: toggle(editForm) }, 'Edit'));
  if (node.edited) {
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
  if (node.replies.length) wrapper.append(h('div', { class: 'replies' }, node.replies.map((r) => messageNode(r, partnerId, reload))));
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

async function conversationView(partnerId) {
  await learnNames([partnerId]);
  const title = state.users.get(partnerId) ?? `user #${partnerId}`;
  const threads = h('div', { id: 'threads' });
  const reload = async () => {
    const page = await api('GET', `/conversations/${partnerId}/messages?limit=100`);
    const trees = treesOf(page.messages);
    threads.replaceChildren(...(trees.length
      ? trees.map((root) => h('section', { class: 'thread', 'aria-label': 'Thread' }, messageNode(root, partnerId, reload)))
      : [h('p', { class: 'meta' }, 'No messages yet.')]));
  };
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
  render(
    h('h2', {}, `Conversation with ${title}`),
    h('div', { class: 'actions' },
      actionButton('Mark conversation read', async () => {
        await api('POST', `/conversations/${partnerId}/read`);
        await reload();
        refreshCounts();
      }),
    ),
    composer,
    threads,
  );
  // Opening a conversation reads what the partner sent.
  await api('POST', `/conversations/${partnerId}/read`);
  refreshCounts();
  await reload();
  return {
    onNotification: (n) => {
      if (n.senderId !== partnerId) return;
      attempt(async () => {
        await api('POST', `/conversations/${partnerId}/read`);
        await reload();
        refreshCounts();
      });
    },
  };
}

async function inboxView() {
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

async function notificationsView() {
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
            location.hash = `#/c/${n.senderId}`;
          }),
          h('div', { class: 'content' }, n.preview),
          h('div', { class: 'meta' }, when(n.createdAt), n.readAt ? ' · read' : ' · unread'),
        )))
      : h('p', { class: 'meta' }, 'No notifications.'),
  );
  return { onNotification: () => route() };
}

function accountView() {
  render(
    h('h2', {}, 'Account'),
    h('p', {}, `Signed in as ${state.me.username}${state.me.displayName ? ` (${state.me.displayName})` : ''}.`),
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

// ---------------------------------------------------------------- routing

async function route() {
  clearError();
  if (!state.me) {
    state.view = null;
    authView();
    return;
  }
  const hash = location.hash || '#/conversations';
  const conversation = /^#\/c\/(\d+)$/.exec(hash);
  const views = {
    '#/conversations': conversationsView,
    '#/inbox': inboxView,
    '#/notifications': notificationsView,
    '#/account': accountView,
  };
  const view = conversation ? () => conversationView(Number(conversation[1])) : views[hash] ?? conversationsView;
  state.view = (await attempt(view)) ?? null;
  main.focus({ preventScroll: true });
}

start();
