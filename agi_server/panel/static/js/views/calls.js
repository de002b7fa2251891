// The call log with filters (period, number, extension, direction, status)
// and the recordings to play; the reconnect memory look-up beside it.

import * as http from '../api.js';
import { h, keyed, replace } from '../dom.js';
import { asciiDigits, date, dayStart, digits, duration, phone, startOfDay, when } from '../format.js';
import { t } from '../i18n.js';
import { carrierName, numberType } from '../labels.js';
import { callsOf } from '../popup.js';
import { card, field, setStatus, statusLine } from './common.js';

const PERIODS = ['today', 'yesterday', 'week', 'month', 'custom'];
const DIRECTIONS = ['', 'incoming', 'outgoing', 'internal'];
const STATUSES = ['', 'answered', 'missed', 'abandoned', 'unanswered'];
const PAGE = 50;

function options(values, prefix) {
  return values.map((v) => h('option', { value: v }, t(v ? `${prefix}.${v}` : 'filter.all')));
}

function period(name, from, to) {
  switch (name) {
    case 'yesterday': return [startOfDay(1), startOfDay(0)];
    case 'week': return [startOfDay(6), null];
    case 'month': return [startOfDay(29), null];
    case 'custom': {
      const since = from ? dayStart(from) : null;
      const until = to ? new Date(dayStart(to).getTime() + 86400000) : null;
      return [since, until];
    }
    default: return [startOfDay(0), null];
  }
}

function logCard(ctx) {
  const { el, body } = card('log.title', { cls: 'wide', level: 'h1' });
  const when_ = h('select', { name: 'period' }, ...PERIODS.map((p) => h('option', { value: p }, t(`log.period.${p}`))));
  const from = h('input', { type: 'date', name: 'from' });
  const to = h('input', { type: 'date', name: 'to' });
  const fromJalali = h('small', { class: 'hint jalali', 'aria-live': 'polite' });
  const toJalali = h('small', { class: 'hint jalali', 'aria-live': 'polite' });
  const number = h('input', { type: 'search', inputmode: 'tel', dir: 'ltr', maxlength: 40, name: 'number', autocomplete: 'off' });
  const extension = h('input', { type: 'search', inputmode: 'numeric', dir: 'ltr', maxlength: 20, name: 'extension', autocomplete: 'off' });
  const direction = h('select', { name: 'direction' }, ...options(DIRECTIONS, 'direction'));
  const status = h('select', { name: 'status' }, ...options(STATUSES, 'status'));
  const custom = h('div', { class: 'custom-period', hidden: true },
    h('div', { class: 'field' }, h('label', { for: 'log-from', text: t('log.from') }), from, fromJalali),
    h('div', { class: 'field' }, h('label', { for: 'log-to', text: t('log.to') }), to, toJalali));
  from.id = 'log-from';
  to.id = 'log-to';
  const submit = h('button', { type: 'submit', class: 'primary', text: t('filter.apply') });
  const form = h('form', { class: 'filters', role: 'search' },
    field('log.period', when_).field, custom, field('log.number', number).field, field('log.extension', extension).field,
    field('log.direction', direction).field, field('log.status', status).field, submit);
  const line = statusLine();
  const table = h('table', { class: 'data calls-table' }, h('caption', { class: 'sr-only', text: t('log.title') }),
    h('thead', {}, h('tr', {}, ...['log.col.time', 'log.col.direction', 'log.col.number', 'log.col.extension', 'log.col.queue',
      'log.col.status', 'log.col.wait', 'log.col.talk', 'log.col.recording'].map((k) => h('th', { scope: 'col', text: t(k) })))));
  const rows = h('tbody');
  table.append(rows);
  const more = h('button', { type: 'button', class: 'more', hidden: true, text: t('log.more') });
  body.append(form, line, h('div', { class: 'table-wrap' }, table), more);

  let cursor = null;
  let shown = [];

  const showJalali = (input, out) => {
    out.textContent = input.value ? date(dayStart(input.value)) : '';
  };
  from.addEventListener('input', () => showJalali(from, fromJalali));
  to.addEventListener('input', () => showJalali(to, toJalali));
  when_.addEventListener('change', () => {
    custom.hidden = when_.value !== 'custom';
  });

  function cell(key, ...content) {
    return h('td', { 'data-label': t(key) }, ...content);
  }

  function render() {
    if (!shown.length) {
      replace(rows, h('tr', {}, h('td', { colspan: 9, class: 'empty', text: t('log.none') })));
      return;
    }
    keyed(rows, shown, (r) => r.id, (r) => h('tr', {},
      cell('log.col.time', h('time', { datetime: r.started_at || '' })), cell('log.col.direction'),
      cell('log.col.number', h('span', { class: 'num', dir: 'ltr' }), h('small', { class: 'meta' })),
      cell('log.col.extension', h('span', { dir: 'ltr' })), cell('log.col.queue', h('span', { dir: 'ltr' })),
      cell('log.col.status', h('span', { class: 'badge' })), cell('log.col.wait'), cell('log.col.talk'),
      cell('log.col.recording')), (tr, r) => {
      const [time, dir, num, ext, queue, st, wait, talk, rec] = tr.children;
      tr.dataset.id = r.id;
      time.firstChild.textContent = when(r.started_at);
      time.firstChild.title = r.started_at ? new Date(r.started_at).toISOString() : '';
      dir.textContent = t(`direction.${r.direction}`);
      const n = r.number;
      num.querySelector('.num').textContent = n ? phone(n.national || n.raw) : (r.direction === 'internal' ? '' : t('call.anonymous'));
      num.querySelector('.meta').textContent = n ? [numberType(n), carrierName(n.operator)].filter(Boolean).join(' · ') : '';
      ext.firstChild.textContent = phone(r.answered_by || r.from_extension || (r.extensions || [])[0] || '');
      queue.firstChild.textContent = r.queue || '';
      const badge = st.querySelector('.badge');
      badge.className = `badge status-${r.status}`;
      badge.textContent = t(`status.${r.status}`);
      wait.textContent = duration(r.wait);
      talk.textContent = r.talk ? duration(r.talk) : '–';
      if (r.recording && !rec.firstChild) {
        rec.append(h('button', { type: 'button', class: 'small play', text: t('log.play'),
          'aria-label': t('log.play_label', { when: when(r.started_at) }), onclick: (e) => {
            const audio = h('audio', { controls: true, preload: 'none', src: `/api/recordings/${encodeURIComponent(r.id)}`,
              'aria-label': t('log.recording_of', { when: when(r.started_at) }) });
            e.currentTarget.replaceWith(audio);
            audio.play().catch(() => {});
            audio.focus();
          } }));
      }
    });
  }

  async function load(append = false) {
    const [since, until] = period(when_.value, from.value, to.value);
    const params = {
      since: since ? since.toISOString() : null, until: until ? until.toISOString() : null,
      number: asciiDigits(number.value.trim()) || null, extension: asciiDigits(extension.value.trim()) || null,
      direction: direction.value || null, status: status.value || null, limit: PAGE, cursor: append ? cursor : null,
    };
    submit.disabled = true;
    setStatus(line, t('loading'), 'pending');
    try {
      const reply = await http.get(`/api/calls${http.query(params)}`);
      const items = callsOf(reply);
      shown = append ? shown.concat(items) : items;
      cursor = reply && !Array.isArray(reply) ? reply.next_cursor || null : null;
      more.hidden = !cursor;
      setStatus(line, t('log.count', { n: digits(shown.length) }), '');
      render();
    } catch (e) {
      setStatus(line, ctx.errorText(e), 'error');
    } finally {
      submit.disabled = false;
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  more.addEventListener('click', () => load(true));
  return { el, load };
}

function reconnectCard(ctx) {
  const { el, body } = card('rc.title');
  const number = h('input', { type: 'search', inputmode: 'tel', dir: 'ltr', maxlength: 40, name: 'customer', autocomplete: 'off', required: true });
  const form = h('form', { class: 'inline-form', role: 'search' }, field('rc.number', number).field,
    h('button', { type: 'submit', text: t('rc.look_up') }));
  const line = statusLine();
  const out = h('ul', { class: 'rows' });
  body.append(form, line, out);
  const canForget = ctx.me.scopes.includes('reconnect:write');

  async function lookUp(forget = false) {
    const value = asciiDigits(number.value.trim());
    if (!value) {
      number.focus();
      return;
    }
    try {
      const path = `/api/reconnect/${encodeURIComponent(value)}`;
      const reply = forget ? await http.del(path) : await http.get(path);
      setStatus(line, forget ? t('rc.forgotten', { number: phone(reply.number) }) : t('rc.for', { number: phone(reply.number) }), forget ? 'ok' : '');
      const remembered = reply.modules.filter((m) => m.operator);
      replace(out, ...(reply.modules.length ? reply.modules : []).map((m) => h('li', { class: 'row' },
        h('div', { class: 'row-main' }, h('strong', {}, `${m.name} (${digits(m.module)})`),
          h('small', { class: 'meta' }, m.operator
            ? t('rc.remembered', { operator: phone(m.operator), left: m.seconds_left !== null ? duration(m.seconds_left) : t('rc.until_expiry') })
            : t('rc.nothing'))))));
      if (!reply.modules.length) out.append(h('li', { class: 'empty', text: t('rc.no_modules') }));
      if (canForget && remembered.length) {
        out.append(h('li', {}, h('button', { type: 'button', class: 'danger small', text: t('rc.forget'), onclick: () => lookUp(true) })));
      }
    } catch (e) {
      setStatus(line, e.status === 422 ? t('rc.bad_number') : ctx.errorText(e), 'error');
      replace(out);
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    lookUp();
  });
  return { el };
}

export function mount(root, ctx) {
  const log = logCard(ctx);
  const parts = [log.el];
  if (ctx.me.scopes.includes('reconnect:read') && ctx.me.role !== 'operator') parts.push(reconnectCard(ctx).el);
  root.append(h('div', { class: 'grid calls' }, ...parts));
  log.load();
  return null;
}
