// The admin's page, read-only: health, `check` of the config file, the
// running config without secrets, modules, departments, users, webhook
// subscriptions and their dead letters.

import * as http from '../api.js';
import { h, replace } from '../dom.js';
import { dateTime, digits, phone } from '../format.js';
import { t } from '../i18n.js';
import { moduleName } from '../labels.js';
import { card } from './common.js';

function scalar(value) {
  if (value === null || value === undefined || value === '') return '–';
  if (typeof value === 'boolean') return t(value ? 'yes' : 'no');
  if (Array.isArray(value)) return value.map(scalar).join('، ') || '–';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function definitions(object) {
  return h('table', { class: 'data settings' }, h('tbody', {}, ...Object.entries(object).map(([k, v]) =>
    h('tr', {}, h('th', { scope: 'row', dir: 'ltr', text: k }), h('td', { dir: 'ltr', text: scalar(v) })))));
}

/** A table of objects' scalar fields (the API's own field names as headings). */
function table(items, caption, columns = null) {
  if (!items.length) return h('p', { class: 'empty', text: t('admin.none') });
  const keys = columns || [...new Set(items.flatMap((x) => Object.keys(x)))].filter((k) => items.some((x) => typeof x[k] !== 'object' || x[k] === null || Array.isArray(x[k])));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, h('caption', { class: 'sr-only', text: caption }),
    h('thead', {}, h('tr', {}, ...keys.map((k) => h('th', { scope: 'col', dir: 'ltr', text: k })))),
    h('tbody', {}, ...items.map((x) => h('tr', {}, ...keys.map((k) => h('td', { 'data-label': k, dir: 'ltr', text: scalar(x[k]) })))))));
}

const PART_WORDS = { up: 'admin.part.up', 'not configured': 'admin.part.not_configured' };

async function healthCard(ctx) {
  const { el, body } = card('admin.health');
  try {
    // 200 ready or 503 degraded: both carry the parts.
    const reply = await (await fetch('/healthz', { credentials: 'same-origin', cache: 'no-store' })).json();
    replace(body, h('p', { class: `badge health-${reply.status}`, text: t(`admin.health.${reply.status}`) }),
      h('ul', { class: 'plain health-parts' }, ...Object.entries(reply.parts).map(([part, value]) => h('li', { class: value === 'up' ? 'ok' : 'warn' },
        h('strong', { dir: 'ltr', text: part }), ': ', PART_WORDS[value] ? t(PART_WORDS[value]) : h('span', { dir: 'ltr', text: value })))));
  } catch {
    replace(body, h('p', { class: 'error', text: t('error.network') }));
  }
  return el;
}

function checkCard(summary) {
  const { el, body } = card('admin.check');
  const c = summary.check;
  body.append(h('p', { class: `badge ${c.ok ? 'health-ready' : 'health-degraded'}`, text: t(c.ok ? 'admin.check_ok' : 'admin.check_bad') }));
  if (c.source) body.append(h('p', { class: 'check-file' }, t('admin.check_file'), ' ', h('code', { dir: 'ltr', text: c.source })));
  if (c.problems.length) body.append(h('ul', { class: 'problems', dir: 'ltr' }, ...c.problems.map((p) => h('li', { text: p }))));
  body.append(h('p', {}, t('admin.routes', { n: digits((c.ok ? c.routes : summary.running_routes).length) })),
    h('ul', { class: 'routes', dir: 'ltr' }, ...(c.ok ? c.routes : summary.running_routes).map((r) => h('li', {}, h('code', { text: r })))));
  return el;
}

function configCard(summary) {
  const { el, body } = card('admin.config', { cls: 'wide' });
  for (const [section, value] of Object.entries(summary.config)) {
    if (value && typeof value === 'object') body.append(h('h3', { dir: 'ltr', text: section }), definitions(value));
    else body.append(definitions({ [section]: value }));
  }
  body.append(h('h3', { text: t('admin.modules') }),
    table(summary.modules.map((m) => ({ kind: moduleName(m.kind), code: m.code, name: m.name, ...m.summary })), t('admin.modules')),
    h('h3', { text: t('admin.departments') }),
    table(Object.entries(summary.departments).map(([name, d]) => ({ department: name, extensions: d.extensions.map(phone), helpers: d.helpers.map(phone) })), t('admin.departments')));
  return el;
}

function usersCard(summary) {
  const { el, body } = card('admin.users');
  body.append(table(summary.users.map((u) => ({ ...u, role: t(`role.${u.role}`) })), t('admin.users'), ['name', 'role', 'extensions', 'departments']),
    h('p', { class: 'hint' }, t('admin.users_hint'), ' ', h('code', { dir: 'ltr', text: 'agi-server users add NAME --role operator --extension 5050' })));
  return el;
}

/** Subscriptions with their backlog, and each one's dead letters (GET /api/webhooks...). */
async function webhooksCard() {
  const { el, body } = card('admin.webhooks', { cls: 'wide' });
  try {
    const subs = (await http.get('/api/webhooks')).webhooks || [];
    body.append(table(subs.map((s) => ({
      id: s.id, url: s.url, events: s.events, description: s.description, created: dateTime(s.created),
      pending: s.backlog ? s.backlog.pending : null, lag: s.backlog ? s.backlog.lag : null, dead: s.backlog ? s.backlog.dead : null,
    })), t('admin.webhooks'), ['id', 'url', 'events', 'description', 'created', 'pending', 'lag', 'dead']));
    const letters = [];
    for (const s of subs) {
      const reply = await http.get(`/api/webhooks/${encodeURIComponent(s.id)}/dead-letters?limit=50`);
      for (const d of reply.dead_letters || []) letters.push({ subscription: s.id, ...d, at: dateTime(d.at) });
    }
    body.append(h('h3', { text: t('admin.dead_letters') }),
      table(letters, t('admin.dead_letters'), ['subscription', 'at', 'type', 'event_id', 'attempts', 'error']));
  } catch (e) {
    body.append(h('p', { class: 'empty', text: e.status === 404 ? t('admin.no_webhooks_api') : String(e.message) }));
  }
  return el;
}

export function mount(root, ctx) {
  const grid = h('div', { class: 'grid admin' });
  root.append(h('h1', { class: 'sr-only', text: t('nav.admin') }), grid);
  let alive = true;
  (async () => {
    const health = healthCard(ctx);
    try {
      const summary = await http.get('/api/panel/admin');
      if (!alive) return;
      grid.append(await health, checkCard(summary), configCard(summary), usersCard(summary));
    } catch (e) {
      grid.append(await health, h('p', { class: 'error', text: ctx.errorText(e) }));
    }
    if (alive) grid.append(await webhooksCard());
  })();
  return () => {
    alive = false;
  };
}
