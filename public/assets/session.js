// Signing in and out, and which view the address shows.

import { api, attempt, whenUnauthorized } from './api.js';
import { clearError, focusMain } from './dom.js';
import { connectEvents, refreshCounts } from './live.js';
import { state } from './state.js';
import { groupView } from './groups.js';
import { moderationView } from './moderation.js';
import { accountView, authView, conversationsView, conversationView, searchView, threadView } from './views.js';

const nav = document.getElementById('nav');

export async function start() {
  whenUnauthorized(() => state.me && signedOut());
  window.addEventListener('hashchange', route);
  document.getElementById('logout').addEventListener('click', () =>
    attempt(async () => {
      await api('POST', '/auth/logout');
      signedOut();
    }),
  );
  // Who is signed in: 200 with null when nobody is (no 401 in the console).
  try {
    state.me = (await api('GET', '/auth/session')).user;
  } catch {
    state.me = null;
  }
  if (state.me) signedIn(state.me);
  else route();
}

export function signedIn(user) {
  state.me = user;
  nav.hidden = false;
  document.getElementById('whoami').textContent = user.displayName ? `${user.displayName} (@${user.username})` : `@${user.username}`;
  // Whether to show the moderators' page: /me says (a login's answer does not).
  const moderation = document.getElementById('moderation-link');
  moderation.hidden = !user.isModerator;
  if (user.isModerator === undefined) {
    api('GET', '/me').then((me) => {
      state.me = { ...state.me, ...me };
      moderation.hidden = !me.isModerator;
    }, () => {});
  }
  connectEvents();
  refreshCounts();
  if (!location.hash || location.hash.startsWith('#/login')) location.hash = '#/conversations';
  else route();
}

export function signedOut() {
  state.me = null;
  state.users.clear();
  state.events?.close();
  state.events = null;
  nav.hidden = true;
  document.title = 'signalbox';
  location.hash = '#/login';
  route();
}

let routed = 0;
export async function route() {
  const generation = ++routed;
  clearError();
  if (!state.me) {
    state.view = null;
    authView();
    return;
  }
  const hash = location.hash || '#/conversations';
  const conversation = /^#\/c\/(\d+)$/.exec(hash);
  const group = /^#\/g\/(\d+)$/.exec(hash);
  const thread = /^#\/t\/(\d+)$/.exec(hash);
  const search = /^#\/search(?:\?(.*))?$/.exec(hash);
  const views = {
    '#/conversations': conversationsView,
    '#/account': accountView,
    '#/moderation': moderationView,
  };
  const view = conversation
    ? () => conversationView(Number(conversation[1]))
    : group
      ? () => groupView(Number(group[1]))
      : thread
      ? () => threadView(Number(thread[1]))
      : search
      ? () => searchView(new URLSearchParams(search[1] ?? ''))
      : views[hash] ?? conversationsView;
  const shown = (await attempt(view)) ?? null;
  // A later route (a click while this view loaded) owns the page now.
  if (generation !== routed) return;
  state.view = shown;
  focusMain();
}
