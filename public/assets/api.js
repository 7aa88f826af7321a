// The HTTP API: one fetch wrapper (session cookie, CSRF header), errors in
// plain words, and attempt() so that no action can break the page.

import { clearError, h, showError } from './dom.js';

let onUnauthorized = () => {};
/** What a 401 on a signed-in page does (sign out); set by the session. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

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

export class ApiError extends Error {
  /** `exact`: the message is already the words to show. */
  constructor(status, body, exact = false) {
    super(exact ? body.message.charAt(0).toUpperCase() + body.message.slice(1) + '.' : plainWords(status, body));
    this.status = status;
  }
}

/** Calls the API with the session cookie; throws ApiError with plain words. */
export async function api(method, url, body) {
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
    if (res.status === 401 && !url.startsWith('/auth/')) onUnauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

/** Runs an action; shows its error in plain words instead of breaking the page. */
export async function attempt(fn) {
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
export function actionButton(label, action) {
  return h('button', { type: 'button', class: 'secondary', onclick: () => attempt(action) }, label);
}
