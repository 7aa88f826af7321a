// signalbox web client: plain ES modules, public API only. Authentication is
// the HttpOnly SameSite=Strict cookie set at login; this script never sees
// or stores a token. All user text goes through textContent (never HTML).
//
//   dom.js      rendering helpers          api.js    the HTTP API, errors in plain words
//   state.js    who, names, the view       live.js   the event stream and the unread count
//   views.js    one function per view      session.js sign in/out and routing

import { start } from './session.js';

start();
