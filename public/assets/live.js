// Live updates: one EventSource for the signed-in user, and the one unread
// count (navigation and tab title).

import { api } from './api.js';
import { state } from './state.js';

const unreadCount = document.getElementById('unread-count');

export function connectEvents() {
  if (state.events) return;
  // Same-origin EventSource sends the session cookie; it reconnects by
  // itself with Last-Event-ID, and the server replays what was missed.
  const events = new EventSource('/notifications/stream');
  // A notification changes the count; the open view learns of the message
  // itself from message.created (which the sender's other tabs get too).
  events.addEventListener('notification', () => refreshCounts());
  // The conversations' live events: {count, messages} per SQL statement.
  for (const type of ['message.created', 'message.edited', 'message.deleted', 'message.read']) {
    events.addEventListener(type, (e) => state.view?.onMessages?.(type, JSON.parse(e.data)));
  }
  // Someone I talked with deleted their account: {userId}.
  events.addEventListener('account.deleted', (e) => {
    refreshCounts();
    state.view?.onAccountDeleted?.(JSON.parse(e.data).userId);
  });
  // The stream could not replay what was missed (pruned): the view reloads.
  events.addEventListener('reset', () => state.view?.onMessages?.('reset', { count: 1, messages: [] }));
  state.events = events;
}

/**
 * The one unread number: messages not yet read, direct and group alike, over
 * the newest 100 conversations (the list the count sends you to). The list
 * is the server's cached view, dropped whenever it changes.
 */
export async function refreshCounts() {
  if (!state.me) return;
  try {
    const list = await api('GET', '/conversations?limit=100');
    const total = list.conversations.reduce((sum, c) => sum + c.unreadCount, 0);
    unreadCount.textContent = total ? String(total) : '';
    document.title = total ? `(${total}) signalbox` : 'signalbox';
  } catch {
    // Counts are decoration; an error here must not break the page.
  }
}

/** Reads every conversation that has unread messages, and every notification. */
export async function markAllRead(conversations) {
  await Promise.all(conversations.map((c) =>
    api('POST', c.group ? `/groups/${c.group.id}/read` : `/conversations/${c.user.id}/read`)));
  await api('POST', '/notifications/read-all');
  await refreshCounts();
}
