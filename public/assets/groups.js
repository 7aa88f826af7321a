// Group conversations: creating one, its view (messages with their
// senders, the members, what the owner may change, leaving).

import { actionButton, api, ApiError, attempt } from './api.js';
import { formValues, h, render } from './dom.js';
import { refreshCounts } from './live.js';
import { route } from './session.js';
import { learnMembers, nameOf, state } from './state.js';
import { threadsOf } from './views.js';

/** Looks a username up; a clear message when nobody has it. */
async function userNamed(username) {
  const name = username.trim();
  return api('GET', `/users/${encodeURIComponent(name)}`).catch((error) => {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      throw new ApiError(404, { message: `nobody is called "${name}"; check the username` }, true);
    }
    throw error;
  });
}

/** The form on the conversations page: a title and the members' usernames. */
export function newGroupForm() {
  return h('form', {
    class: 'inline',
    'aria-labelledby': 'new-group-title',
    onsubmit: (e) => {
      e.preventDefault();
      const { title, usernames } = formValues(e.target);
      attempt(async () => {
        const names = usernames.split(/[\s,]+/).filter(Boolean);
        const members = await Promise.all(names.map(userNamed));
        const group = await api('POST', '/groups', { title, memberIds: members.map((m) => m.id) });
        location.hash = `#/g/${group.id}`;
      });
    },
  },
    h('h2', { id: 'new-group-title' }, 'New group'),
    h('label', {}, 'Title', h('input', { name: 'title', required: true, maxlength: 100 })),
    h('label', {}, 'Members (usernames, separated by commas)', h('input', { name: 'usernames', autocomplete: 'off' })),
    h('button', { type: 'submit' }, 'Create group'),
  );
}

export async function groupView(groupId) {
  const group = await api('GET', `/groups/${groupId}`);
  learnMembers(group);
  const manages = group.managerId === state.me.id;
  const { threads, reload } = threadsOf(`/groups/${groupId}/messages?limit=100`);
  const composer = h('form', {
    class: 'inline',
    onsubmit: (e) => {
      e.preventDefault();
      attempt(async () => {
        await api('POST', '/messages', { groupId, content: formValues(e.target).content });
        e.target.reset();
        await reload();
      });
    },
  },
    h('label', {}, `New message to ${group.title}`, h('textarea', { name: 'content', required: true, maxlength: 10000 })),
    h('button', { type: 'submit' }, 'Send'),
  );
  const members = h('ul', { class: 'list', id: 'members', 'aria-label': 'Members' }, group.members.map((m) =>
    h('li', { class: 'item', dataset: { userId: m.userId } },
      h('strong', {}, m.userId === state.me.id ? 'You' : nameOf(m.userId)),
      m.role === 'owner' ? h('span', { class: 'meta' }, ' · owner') : null,
      manages && m.userId !== state.me.id
        ? actionButton(`Remove ${nameOf(m.userId)}`, async () => {
          await api('DELETE', `/groups/${groupId}/members/${m.userId}`);
          await route();
        })
        : null,
    )));
  const addForm = manages
    ? h('form', {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        attempt(async () => {
          const user = await userNamed(formValues(e.target).username);
          await api('POST', `/groups/${groupId}/members`, { userId: user.id });
          await route();
        });
      },
    },
      h('label', {}, 'Add a member (username)', h('input', { name: 'username', required: true, autocomplete: 'off' })),
      h('button', { type: 'submit' }, 'Add'),
    )
    : null;
  render(
    h('h2', {}, group.title),
    h('details', { class: 'members' },
      h('summary', {}, `${group.members.length} member${group.members.length === 1 ? '' : 's'}`),
      members, addForm),
    h('div', { class: 'actions' },
      actionButton('Leave group', async () => {
        if (!window.confirm(`Leave ${group.title}? You keep what was sent while you were in it.`)) return;
        await api('DELETE', `/groups/${groupId}/members/${state.me.id}`);
        location.hash = '#/conversations';
      }),
    ),
    composer,
    threads,
  );
  // Opening the group reads it: the read position moves to its newest message.
  await api('POST', `/groups/${groupId}/read`);
  refreshCounts();
  await reload();
  const read = () => attempt(async () => {
    await api('POST', `/groups/${groupId}/read`);
    await reload();
  });
  return {
    onNotification: (n) => {
      if (n.groupId === groupId) read();
    },
    // Live events: my messages to the group from elsewhere, edits in it.
    onMessages: (type, batch) => {
      if (type === 'message.read') return;
      if (batch.count > batch.messages.length || batch.messages.some((m) => m.groupId === groupId && (type === 'message.edited' || m.senderId === state.me.id))) {
        attempt(reload);
      }
    },
  };
}
