// Short messages in a polite live region (screen readers read them).

import { $, h } from './dom.js';

export function toast(text, kind = 'info', timeout = 6000, { id = null, dataset = {} } = {}) {
  const host = $('#toasts');
  if (id) {
    const old = document.getElementById(id);
    if (old) old.remove();
  }
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', id, dataset }, text);
  host.append(el);
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}
