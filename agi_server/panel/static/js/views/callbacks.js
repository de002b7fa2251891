// The callback queue: every request the supervisor may see, with cancel,
// retry (due now) and reassign (only that agent dials it back).

import * as http from '../api.js';
import { h, keyed, replace } from '../dom.js';
import { digits, phone, when } from '../format.js';
import { t } from '../i18n.js';
import { card, debounce, field, setStatus, statusLine } from './common.js';

const STATES = ['open', 'pending', 'dialing', 'done', 'failed', 'cancelled', 'all'];

function cell(labelKey, ...content) {
  return h('td', { 'data-label': t(labelKey) }, ...content);
}

export function mount(root, ctx) {
  const { el, body } = card('cb.title', { cls: 'wide', level: 'h1' });
  const filter = h('select', { name: 'state' }, ...STATES.map((s) => h('option', { value: s }, t(`cb.filter.${s}`))));
  const number = h('input', { type: 'search', inputmode: 'tel', dir: 'ltr', maxlength: 40, name: 'number', autocomplete: 'off' });
  const form = h('form', { class: 'filters', role: 'search' }, field('cb.filter_state', filter).field, field('cb.filter_number', number).field,
    h('button', { type: 'submit', text: t('filter.apply') }));
  const line = statusLine();
  const table = h('table', { class: 'data callbacks-table' },
    h('caption', { class: 'sr-only', text: t('cb.title') }),
    h('thead', {}, h('tr', {}, ...['cb.col.number', 'cb.col.module', 'cb.col.state', 'cb.col.created', 'cb.col.attempts',
      'cb.col.agent', 'cb.col.actions'].map((k) => h('th', { scope: 'col', text: t(k) })))));
  const rows = h('tbody');
  table.append(rows);
  const agents = [...new Set([...ctx.me.extensions])].sort((a, b) => a.length - b.length || a.localeCompare(b));
  body.append(form, line, h('div', { class: 'table-wrap' }, table));
  root.append(el);

  async function act(item, verb, payload) {
    try {
      const done = await http.post(`/api/callbacks/${encodeURIComponent(item.id)}/${verb}`, payload);
      setStatus(line, t(`cb.did.${verb}`, { number: phone(item.number), state: t(`cb.state.${done.state}`) }), 'ok');
    } catch (e) {
      setStatus(line, ctx.errorText(e), 'error');
    }
    load();
  }

  async function load() {
    const state = filter.value;
    const params = { limit: 200, state: ['open', 'all'].includes(state) ? null : state, number: number.value.trim() || null };
    try {
      let items = await http.get(`/api/callbacks${http.query(params)}`);
      if (state === 'open') items = items.filter((c) => ['pending', 'dialing'].includes(c.state));
      if (!items.length) {
        replace(rows, h('tr', {}, h('td', { colspan: 7, class: 'empty', text: t('cb.none') })));
        return;
      }
      keyed(rows, items, (c) => c.id, (c) => {
        const select = h('select', { class: 'reassign-to', 'aria-label': t('cb.reassign_to', { number: phone(c.number) }) },
          h('option', { value: '' }, t('cb.choose_agent')), ...agents.map((a) => h('option', { value: a }, phone(a))));
        return h('tr', {},
          cell('cb.col.number', h('span', { class: 'num', dir: 'ltr' })), cell('cb.col.module'), cell('cb.col.state', h('span', { class: 'badge' })),
          cell('cb.col.created'), cell('cb.col.attempts'), cell('cb.col.agent'),
          cell('cb.col.actions', h('div', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small cancel', text: t('cb.cancel') }),
            h('button', { type: 'button', class: 'small retry', text: t('cb.retry') }),
            h('span', { class: 'reassign' }, select, h('button', { type: 'button', class: 'small do-reassign', text: t('cb.reassign') })))));
      }, (tr, c) => {
        tr.dataset.state = c.state;
        const [numCell, moduleCell, stateCell, createdCell, attemptsCell, agentCell] = tr.children;
        numCell.querySelector('.num').textContent = phone(c.number);
        moduleCell.textContent = digits(c.module);
        const badge = stateCell.querySelector('.badge');
        badge.className = `badge cb-${c.state}`;
        badge.textContent = t(`cb.state.${c.state}`);
        createdCell.textContent = when(c.created * 1000);
        attemptsCell.textContent = digits(c.attempts);
        agentCell.textContent = c.preferred_agent ? t('cb.preferred', { agent: phone(c.preferred_agent) }) : (c.agent ? phone(c.agent) : '–');
        const open = ['pending', 'dialing'].includes(c.state);
        const [cancel, retry, reassign] = tr.querySelector('.row-actions').children;
        cancel.hidden = !open;
        cancel.setAttribute('aria-label', t('cb.cancel_label', { number: phone(c.number) }));
        cancel.onclick = () => act(c, 'cancel', { reason: `cancelled in the panel by ${ctx.me.name}` });
        retry.setAttribute('aria-label', t('cb.retry_label', { number: phone(c.number) }));
        retry.onclick = () => act(c, 'retry');
        reassign.hidden = c.state !== 'pending';
        const select = reassign.querySelector('select');
        reassign.querySelector('button').onclick = () => {
          if (!select.value) {
            select.focus();
            setStatus(line, t('cb.choose_agent_first'), 'error');
            return;
          }
          act(c, 'reassign', { extension: select.value });
        };
      });
    } catch (e) {
      replace(rows, h('tr', {}, h('td', { colspan: 7, class: 'empty error', text: ctx.errorText(e) })));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  filter.addEventListener('change', load);
  const later = debounce(load, 400);
  const onChange = (e) => {
    if (e.detail.kind.startsWith('callback.')) later();
  };
  ctx.live.addEventListener('change', onChange);
  load();
  return () => ctx.live.removeEventListener('change', onChange);
}
