// Pieces several views share: cards, the click-to-call action, status lines.

import * as http from '../api.js';
import { h } from '../dom.js';
import { phone } from '../format.js';
import { t } from '../i18n.js';

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A titled section; returns {el, body}. */
export function card(titleKey, { cls = '', level = 'h2', extra = null } = {}) {
  const id = uid('card');
  const body = h('div', { class: 'card-body' });
  const el = h('section', { class: `card ${cls}`, 'aria-labelledby': id },
    h('div', { class: 'card-head' }, h(level, { id, 'data-i18n': titleKey, text: t(titleKey) }), extra), body);
  return { el, body };
}

/** A status line people can hear (role=status). */
export function statusLine(cls = '') {
  return h('p', { class: `status-line ${cls}`, role: 'status', 'aria-live': 'polite' });
}

export function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.dataset.kind = kind;
}

/**
 * Click-to-call: ring the user's phone, then dial `number`. Writes the
 * progress to `line`; resolves with the API's answer (or null on error).
 */
export async function clickToCall(ctx, number, line, extension = null) {
  const mine = extension || ctx.me.phones[0];
  setStatus(line, t('dial.ringing_you', { extension: phone(mine) }), 'pending');
  try {
    const body = { number };
    if (extension) body.extension = extension;
    const answer = await http.post('/api/click-to-call', body);
    if (answer.status === 'answered') setStatus(line, t('dial.answered', { number: phone(answer.dialled) }), 'ok');
    else setStatus(line, t('dial.not_answered', { extension: phone(answer.extension) }), 'warn');
    return answer;
  } catch (e) {
    setStatus(line, ctx.errorText(e), 'error');
    return null;
  }
}

/** A labelled form field; returns {field, input}. */
export function field(labelKey, input, hintKey = null) {
  const id = input.id || uid('f');
  input.id = id;
  const parts = [h('label', { for: id, 'data-i18n': labelKey, text: t(labelKey) }), input];
  if (hintKey) {
    const hid = uid('hint');
    input.setAttribute('aria-describedby', hid);
    parts.push(h('small', { id: hid, class: 'hint', 'data-i18n': hintKey, text: t(hintKey) }));
  }
  return { field: h('div', { class: 'field' }, parts), input };
}

export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
