// The operator's desk: my extension's state, a dialer, my callback
// requests with "call now", and my recent calls. (The current call pops up
// over every view: popup.js; the help button is in the top bar.)

import * as http from '../api.js';
import { h, keyed, replace, throttled } from '../dom.js';
import { asciiDigits, digits, duration, phone, when } from '../format.js';
import { t } from '../i18n.js';
import { extensionState, moduleName, shownState, stateLabel } from '../labels.js';
import { callOf, otherParty } from '../live.js';
import { callsOf } from '../popup.js';
import { card, clickToCall, debounce, field, setStatus, statusLine } from './common.js';

const OPEN = ['pending', 'dialing'];

function pausedIn(state, exten) {
  const queues = [];
  for (const [name, q] of state.queues) {
    for (const m of q.members.values()) if (m.extension === exten && m.paused) queues.push(name);
  }
  return queues;
}

function extensionCard(ctx) {
  const { el, body } = card('desk.my_extension', { cls: 'my-extension' });
  const list = h('ul', { class: 'plain' });
  body.append(list);
  const render = () => {
    const state = ctx.live.state;
    keyed(list, ctx.me.phones, (x) => x, (exten) => h('li', { class: 'ext-row' },
      h('span', { class: 'ext-number', dir: 'ltr' }), h('span', { class: 'badge state' }),
      h('span', { class: 'ext-call' })), (li, exten) => {
      const ext = state.extensions.get(exten);
      const found = callOf(state, exten);
      const name = shownState(ext ? extensionState(ext.status) : 'unknown', found);
      li.querySelector('.ext-number').textContent = phone(exten);
      const badge = li.querySelector('.state');
      badge.className = `badge state state-${name}`;
      badge.textContent = stateLabel(name);
      const paused = pausedIn(state, exten);
      const info = li.querySelector('.ext-call');
      const parts = [];
      if (paused.length) parts.push(t('desk.paused_in', { queues: paused.join('، ') }));
      if (found) {
        const other = otherParty(found.call, exten);
        parts.push(t(found.role === 'ringing' ? 'wall.ringing_from' : 'wall.talking_to', { who: other ? phone(other) : t(found.call.partial ? 'call.unknown' : 'call.anonymous') }));
      }
      info.textContent = parts.join(' · ');
    });
  };
  return { el, render };
}

function dialerCard(ctx) {
  const { el, body } = card('dial.title', { cls: 'dialer' });
  const number = h('input', { type: 'tel', inputmode: 'tel', autocomplete: 'off', dir: 'ltr', required: true, maxlength: 40, name: 'number' });
  const numberField = field('dial.number', number, 'dial.number_hint');
  let from = null;
  const parts = [numberField.field];
  if (ctx.me.phones.length > 1) {
    from = h('select', { name: 'extension' }, ...ctx.me.phones.map((p) => h('option', { value: p }, phone(p))));
    parts.push(field('dial.from', from).field);
  }
  const button = h('button', { type: 'submit', class: 'primary', 'data-i18n': 'dial.call', text: t('dial.call') });
  const line = statusLine();
  const form = h('form', { class: 'dial-form', novalidate: true }, parts, button, line);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = asciiDigits(number.value).replace(/[\s\-().]/g, '');
    if (!/^\+?[0-9]{2,30}$/.test(value)) {
      setStatus(line, t('dial.bad_number'), 'error');
      number.setAttribute('aria-invalid', 'true');
      number.focus();
      return;
    }
    number.removeAttribute('aria-invalid');
    button.disabled = true;
    await clickToCall(ctx, value, line, from ? from.value : null);
    button.disabled = false;
  });
  body.append(form);
  return { el, dial: (n) => { number.value = n; number.focus(); } };
}

function callbacksCard(ctx) {
  const { el, body } = card('desk.callbacks', { cls: 'my-callbacks' });
  const list = h('ul', { class: 'rows' });
  const line = statusLine();
  body.append(list, line);
  const load = async () => {
    try {
      const items = (await http.get('/api/callbacks?limit=100')).filter((c) => OPEN.includes(c.state));
      if (!items.length) {
        replace(list, h('li', { class: 'empty', text: t('desk.callbacks_none') }));
        return;
      }
      keyed(list, items, (c) => c.id, (c) => h('li', { class: 'row callback' },
        h('div', { class: 'row-main' }, h('span', { class: 'num', dir: 'ltr' }), h('small', { class: 'meta' })),
        h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'call-now primary', 'data-i18n': 'cb.call_now', text: t('cb.call_now') }))),
      (li, c) => {
        li.dataset.id = c.id;
        li.querySelector('.num').textContent = phone(c.number);
        li.querySelector('.meta').textContent = [moduleName('callback') + ' ' + digits(c.module), t(`cb.state.${c.state}`),
          t('cb.asked', { when: when(c.created * 1000) }), t('cb.attempts', { n: digits(c.attempts) })].join(' · ');
        li.querySelector('.call-now').onclick = () => callNow(ctx, c, li, line, load);
      });
    } catch (e) {
      if (e.status !== 401) replace(list, h('li', { class: 'empty error', text: ctx.errorText(e) }));
    }
  };
  return { el, load: debounce(load, 300), loadNow: load };
}

async function callNow(ctx, request, li, line, reload) {
  const answer = await clickToCall(ctx, request.number, line);
  if (!answer || answer.status !== 'answered') return;
  // Ask whether the customer was reached; only then is the request closed.
  const actions = li.querySelector('.row-actions');
  const yes = h('button', { type: 'button', class: 'primary', text: t('cb.reached_yes') });
  const no = h('button', { type: 'button', text: t('cb.reached_no') });
  const question = h('div', { class: 'confirm', role: 'group', 'aria-label': t('cb.reached_q') },
    h('span', { text: t('cb.reached_q') }), yes, no);
  replace(actions, question);
  yes.focus();
  yes.onclick = async () => {
    try {
      await http.post(`/api/callbacks/${encodeURIComponent(request.id)}/cancel`, { reason: `called back from the panel by ${ctx.me.name}` });
      setStatus(line, t('cb.closed', { number: phone(request.number) }), 'ok');
    } catch (e) {
      setStatus(line, ctx.errorText(e), 'error');
    }
    reload();
  };
  no.onclick = () => reload();
}

function recentCard(ctx, dial) {
  const { el, body } = card('desk.recent', { cls: 'recent' });
  const list = h('ul', { class: 'rows' });
  body.append(list);
  const load = async () => {
    try {
      const rows = [];
      for (const exten of ctx.me.phones) {
        rows.push(...callsOf(await http.get(`/api/calls${http.query({ extension: exten, limit: 15 })}`)));
      }
      rows.sort((a, b) => String(b.started_at).localeCompare(String(a.started_at)));
      const seen = new Set();
      const unique = rows.filter((r) => !seen.has(r.id) && seen.add(r.id)).slice(0, 15);
      if (!unique.length) {
        replace(list, h('li', { class: 'empty', text: t('desk.recent_none') }));
        return;
      }
      keyed(list, unique, (r) => r.id, () => h('li', { class: 'row' },
        h('div', { class: 'row-main' }, h('span', { class: 'num', dir: 'ltr' }), h('small', { class: 'meta' })),
        h('div', { class: 'row-actions' })), (li, r) => {
        const other = r.number ? (r.number.national || r.number.raw) : (r.from_extension === ctx.me.phones[0] ? r.answered_by : r.from_extension);
        li.querySelector('.num').textContent = other ? phone(other) : t('call.anonymous');
        li.querySelector('.meta').textContent = [when(r.started_at), t(`direction.${r.direction}`), t(`status.${r.status}`),
          r.talk ? duration(r.talk) : null].filter(Boolean).join(' · ');
        li.dataset.status = r.status;
        const actions = li.querySelector('.row-actions');
        if (other && !actions.firstChild) {
          actions.append(h('button', { type: 'button', class: 'small', text: t('desk.call_back'),
            'aria-label': t('desk.call_back_label', { number: phone(other) }), onclick: () => dial(other) }));
        }
      });
    } catch (e) {
      if (e.status !== 401) replace(list, h('li', { class: 'empty error', text: ctx.errorText(e) }));
    }
  };
  return { el, load: debounce(load, 500), loadNow: load };
}

export function mount(root, ctx) {
  if (!ctx.me.phones.length) {
    root.append(h('p', { class: 'empty', text: t('desk.no_phone') }));
    return null;
  }
  const ext = extensionCard(ctx);
  const dialer = dialerCard(ctx);
  const callbacks = callbacksCard(ctx);
  const recent = recentCard(ctx, dialer.dial);
  root.append(h('h1', { class: 'sr-only', text: t('nav.desk') }),
    h('div', { class: 'grid desk' }, ext.el, dialer.el, callbacks.el, recent.el));
  const render = throttled(ext.render);
  const onChange = (e) => {
    render();
    const kind = e.detail.kind;
    if (kind.startsWith('callback.')) callbacks.load();
    if (kind === 'ended' && (e.detail.record.extensions || []).some((x) => ctx.me.phones.includes(x))) {
      recent.load();
      callbacks.load();
    }
  };
  ctx.live.addEventListener('change', onChange);
  ext.render();
  callbacks.loadNow();
  recent.loadNow();
  return () => ctx.live.removeEventListener('change', onChange);
}
