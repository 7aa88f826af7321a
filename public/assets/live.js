// Live updates: one EventSource for the signed-in user, and the unread
// count in the navigation.

import { api } from './api.js';
import { state } from './state.js';

const inboxCount = document.getElementById('inbox-count');

export function connectEvents() {
  if (state.events) return;
  // Same-origin EventSource sends the session cookie; it reconnects by
  // itself with Last-Event-ID, and the server replays what was missed.
  const events = new EventSource('/notifications/stream');
  events.addEventListener('notification', (e) => {
    const n = JSON.parse(e.data);
    refreshCounts();
    if (state.view?.onNotification) state.view.onNotification(n);
  });
  // The conversations' live events: {count, messages} per SQL statement.
  for (const type of ['message.created', 'message.edited', 'message.read']) {
    events.addEventListener(type, (e) => state.view?.onMessages?.(type, JSON.parse(e.data)));
  }
  state.events = events;
}

export async function refreshCounts() {
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
