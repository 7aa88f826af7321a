// Rendering helpers: elements from data (text always through textContent,
// never HTML), the page's main area and its alert line.

const main = document.getElementById('main');
const alertBox = document.getElementById('alert');

/** Builds an element: h('button', { type: 'button', onclick }, 'text', child…). */
export function h(tag, attrs = {}, ...children) {
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

export const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

export function render(...nodes) {
  main.replaceChildren(...nodes);
}

export function showError(message) {
  alertBox.textContent = message;
  alertBox.hidden = false;
}
export function clearError() {
  alertBox.hidden = true;
  alertBox.textContent = '';
}


/** Puts the focus on the main area after a view changed (screen readers). */
export function focusMain() {
  // A view that focused its own field (the chat's composer) keeps it.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}
