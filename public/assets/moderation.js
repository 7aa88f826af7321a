// The moderators' page: open reports, oldest first, each with the words
// as reported and the three actions.

import { actionButton, api } from './api.js';
import { h, render, when } from './dom.js';
import { route } from './session.js';
import { state } from './state.js';

const actions = [
  ['dismiss', 'Dismiss'],
  ['delete_message', 'Delete message'],
  ['suspend_user', 'Suspend user'],
];

export async function moderationView() {
  if (!state.me.isModerator) {
    render(h('h2', {}, 'Moderation'), h('p', { class: 'meta' }, 'Only moderators see reports.'));
    return null;
  }
  const data = await api('GET', '/moderation/reports');
  render(
    h('h2', {}, `Open reports (${data.reports.length})`),
    data.reports.length
      ? h('ul', { class: 'list', id: 'reports' }, data.reports.map((r) =>
        h('li', { class: 'item', dataset: { reportId: r.id } },
          h('div', { class: 'meta' },
            h('strong', {}, r.reporter.username), ' reported ', h('strong', {}, r.reportedUser.username),
            r.reportedUser.suspended ? ' (suspended)' : '', ' · ', when(r.createdAt)),
          h('div', { class: 'content' }, r.contentSnapshot ?? (r.messageDeleted ? 'The message was unsent.' : '')),
          h('div', { class: 'meta' }, `Reason: ${r.reason}`),
          h('div', { class: 'actions' }, actions.map(([action, label]) =>
            actionButton(label, async () => {
              await api('POST', `/moderation/reports/${r.id}/resolve`, { action });
              await route();
            }))),
        )))
      : h('p', { class: 'meta' }, 'No open reports.'),
  );
  return null;
}
