// Group conversations: creating one, its view (messages with their
// senders, the members, what the owner may change, leaving).

import { actionButton, api, attempt } from './api.js';
import { formValues, h, render } from './dom.js';
import { refreshCounts } from './live.js';
import { route } from './session.js';
import { learnMembers, nameOf, state, userNamed } from './state.js';
import { chat } from './chat.js';

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
  const read = async () => {
    await api('POST', `/groups/${groupId}/read`).catch(() => {});
    refreshCounts();
  };
  const view = chat({
    url: `/groups/${groupId}/messages`,
    label: `Message to ${group.title}`,
    send: (content, parentMessageId) => api('POST', '/messages', parentMessageId ? { parentMessageId, content } : { groupId, content }),
    belongs: (m) => m.groupId === groupId,
    onIncoming: read,
  });
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
    h('div', { class: 'chat-head' },
      h('h2', {}, group.title),
      h('details', { class: 'members' },
        h('summary', {}, `${group.members.length} member${group.members.length === 1 ? '' : 's'}`),
        members, addForm,
        actionButton('Leave group', async () => {
          if (!window.confirm(`Leave ${group.title}? You keep what was sent while you were in it.`)) return;
          await api('DELETE', `/groups/${groupId}/members/${state.me.id}`);
          location.hash = '#/conversations';
        }),
      ),
    ),
    view.element,
  );
  await view.start();
  // Opening the group reads it: the read position moves to its newest message.
  await read();
  const memberIds = new Set(group.members.map((m) => m.userId));
  return {
    onMessages: view.onMessages,
    // A member's account deletion took their messages and their place: show the group again.
    onAccountDeleted: (userId) => {
      if (memberIds.has(userId)) attempt(route);
    },
  };
}
