// What the client knows: who is signed in, people's names, the open view
// and the live event source.

import { api, ApiError } from './api.js';

export const state = { me: null, users: new Map(), events: null, view: null };

/** How a person is named everywhere: display name, else username. */
export function nameOf(userId, fallback) {
  return state.users.get(userId) ?? fallback ?? `user #${userId}`;
}

/** Learns the names of conversation partners (the API returns ids elsewhere). */
export async function learnNames(ids) {
  if (ids.every((id) => state.users.has(id) || id === state.me.id)) return;
  const list = await api('GET', '/conversations?limit=100');
  for (const c of list.conversations) if (c.user) state.users.set(c.user.id, c.user.displayName || c.user.username);
}

/** Learns the names of a group's members (what its messages' senderIds are). */
export function learnMembers(group) {
  for (const m of group.members) state.users.set(m.userId, m.displayName || m.username);
}

/** Looks a username up and learns its name; a clear message when nobody has it. */
export async function userNamed(username) {
  const name = username.trim();
  const user = await api('GET', `/users/${encodeURIComponent(name)}`).catch((error) => {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      throw new ApiError(404, { message: `nobody is called "${name}"; check the username` }, true);
    }
    throw error;
  });
  state.users.set(user.id, user.displayName || user.username);
  return user;
}
