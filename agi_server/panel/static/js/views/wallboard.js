// The supervisor's live wallboard: queues (callers waiting, longest wait,
// answered / abandoned today, service level), every extension (idle,
// ringing, talking to whom and for how long, paused) with spy / whisper /
// barge, and the operators' help requests as they come.

import * as http from '../api.js';
import { h, keyed, replace, throttled } from '../dom.js';
import { digits, num, percent, phone, startOfDay, when } from '../format.js';
import { t } from '../i18n.js';
import { extensionState, shownState, stateLabel } from '../labels.js';
import { callOf, otherParty } from '../live.js';
import { callsOf } from '../popup.js';
import { card, setStatus, statusLine } from './common.js';

export const SERVICE_LEVEL_SECONDS = 20;
const MODES = ['spy', 'whisper', 'barge'];
const TODAY_PAGES = 20;

function byExtension(a, b) {
  return a.length - b.length || a.localeCompare(b);
}

/** Today's answered / abandoned / within-service-level counts per queue, from the call log. */
export class TodayCounts {
  constructor() {
    this.day = null;
    this.queues = new Map();
    this.seen = new Set();
  }

  count(record) {
    if (!record || !record.queue || this.seen.has(record.id)) return;
    if (this.day && new Date(record.started_at) < this.day) return;
    this.seen.add(record.id);
    const q = this.queues.get(record.queue) || { offered: 0, answered: 0, abandoned: 0, inTime: 0 };
    q.offered += 1;
    if (record.status === 'answered') {
      q.answered += 1;
      if ((record.wait || 0) <= SERVICE_LEVEL_SECONDS) q.inTime += 1;
    } else if (record.status === 'abandoned') q.abandoned += 1;
    this.queues.set(record.queue, q);
  }

  async load() {
    this.day = startOfDay();
    this.queues.clear();
    this.seen.clear();
    let cursor = null;
    for (let page = 0; page < TODAY_PAGES; page += 1) {
      const reply = await http.get(`/api/calls${http.query({ since: this.day.toISOString(), limit: 200, cursor })}`);
      for (const record of callsOf(reply)) this.count(record);
      cursor = reply && !Array.isArray(reply) ? reply.next_cursor || null : null;
      if (!cursor) break;
    }
  }
}

function queuesCard(ctx, today) {
  const { el, body } = card('wall.queues', { cls: 'queues' });
  const list = h('ul', { class: 'queue-list plain' });
  body.append(list);
  const render = () => {
    const state = ctx.live.state;
    const names = [...new Set([...state.queues.keys(), ...ctx.me.departments.filter((d) => state.queues.has(d))])].sort();
    if (!names.length) {
      replace(list, h('li', { class: 'empty', text: t('wall.no_queues') }));
      return;
    }
    keyed(list, names, (n) => n, (name) => h('li', { class: 'queue' },
      h('h3', { dir: 'ltr', text: name }),
      h('dl', { class: 'stats' },
        h('div', { class: 'stat waiting' }, h('dt', { text: t('wall.waiting') }), h('dd', { class: 'big' })),
        h('div', { class: 'stat longest' }, h('dt', { text: t('wall.longest') }), h('dd', { class: 'big' })),
        h('div', { class: 'stat answered' }, h('dt', { text: t('wall.answered_today') }), h('dd')),
        h('div', { class: 'stat abandoned' }, h('dt', { text: t('wall.abandoned_today') }), h('dd')),
        h('div', { class: 'stat sl' }, h('dt', { text: t('wall.service_level', { seconds: digits(SERVICE_LEVEL_SECONDS) }) }), h('dd')),
        h('div', { class: 'stat agents' }, h('dt', { text: t('wall.agents') }), h('dd')))), (li, name) => {
      const q = state.queues.get(name);
      const waiting = [...q.waiting.values()].sort((a, b) => String(a.since).localeCompare(String(b.since)));
      li.dataset.waiting = waiting.length;
      li.querySelector('.waiting dd').textContent = num(waiting.length);
      const longest = li.querySelector('.longest dd');
      if (waiting.length) longest.dataset.since = waiting[0].since;
      else {
        delete longest.dataset.since;
        longest.textContent = '–';
      }
      const c = today.queues.get(name) || { offered: 0, answered: 0, abandoned: 0, inTime: 0 };
      li.querySelector('.answered dd').textContent = num(c.answered);
      li.querySelector('.abandoned dd').textContent = num(c.abandoned);
      li.querySelector('.sl dd').textContent = c.offered ? percent(c.inTime / c.offered) : '–';
      const members = [...q.members.values()];
      const free = members.filter((m) => !m.paused && !m.in_call && [0, 1].includes(m.status)).length;
      const paused = members.filter((m) => m.paused).length;
      li.querySelector('.agents dd').textContent = t('wall.agents_value', { free: num(free), all: num(members.length), paused: num(paused) });
    });
  };
  return { el, render };
}

function agentsCard(ctx) {
  const { el, body } = card('wall.extensions', { cls: 'agents wide' });
  const list = h('ul', { class: 'agent-grid plain' });
  const line = statusLine();
  body.append(line, list);
  const canSupervise = ctx.me.scopes.includes('supervise') && ctx.me.phones.length > 0;
  let busy = false;

  async function supervise(mode, agent) {
    if (busy) return;
    busy = true;
    list.classList.add('busy');
    setStatus(line, t('sup.ringing_you', { mode: t(`sup.${mode}`), agent: phone(agent) }), 'pending');
    try {
      const answer = await http.post('/api/supervise', { mode, agent });
      if (answer.status === 'answered') setStatus(line, t('sup.joined', { mode: t(`sup.${mode}`), agent: phone(agent) }), 'ok');
      else setStatus(line, t('sup.not_answered', { extension: phone(answer.supervisor_extension) }), 'warn');
    } catch (e) {
      setStatus(line, e.status === 409 ? t('sup.not_on_call', { agent: phone(agent) }) : ctx.errorText(e), 'error');
    } finally {
      busy = false;
      list.classList.remove('busy');
    }
  }

  const render = () => {
    const state = ctx.live.state;
    const extens = new Set([...state.extensions.keys()]);
    for (const q of state.queues.values()) for (const m of q.members.values()) if (m.extension) extens.add(m.extension);
    for (const x of ctx.me.extensions) extens.add(x);
    const all = [...extens].filter((x) => ctx.me.role === 'admin' || ctx.me.extensions.includes(x)).sort(byExtension);
    if (!all.length) {
      replace(list, h('li', { class: 'empty', text: t('wall.no_extensions') }));
      return;
    }
    keyed(list, all, (x) => x, (exten) => {
      const actions = h('div', { class: 'actions' });
      if (canSupervise && !ctx.me.phones.includes(exten)) {
        for (const mode of MODES) {
          actions.append(h('button', { type: 'button', class: `small sup-${mode}`, 'data-mode': mode, onclick: () => supervise(mode, exten) }));
        }
      }
      return h('li', { class: 'agent' },
        h('div', { class: 'agent-head' }, h('span', { class: 'ext', dir: 'ltr' }), h('span', { class: 'badge state' })),
        h('p', { class: 'agent-call' }, h('span', { class: 'who' }), ' ', h('span', { class: 'for ticking' })),
        h('p', { class: 'agent-queues' }), actions);
    }, (li, exten) => {
      const ext = state.extensions.get(exten);
      const found = callOf(state, exten);
      const name = shownState(ext ? extensionState(ext.status) : 'unknown', found);
      const queues = [];
      let paused = false;
      for (const [qname, q] of state.queues) {
        for (const m of q.members.values()) {
          if (m.extension !== exten) continue;
          queues.push(qname);
          paused = paused || Boolean(m.paused);
        }
      }
      li.className = `agent${paused ? ' paused' : ''}`;
      li.dataset.state = name;
      li.querySelector('.ext').textContent = phone(exten);
      const badge = li.querySelector('.state');
      badge.className = `badge state state-${name}`;
      badge.textContent = stateLabel(name);
      const who = li.querySelector('.who');
      const since = li.querySelector('.for');
      if (found) {
        const other = otherParty(found.call, exten);
        who.textContent = t(found.role === 'ringing' ? 'wall.ringing_from' : 'wall.talking_to', { who: other ? phone(other) : t(found.call.partial ? 'call.unknown' : 'call.anonymous') });
        since.dataset.since = found.call.answered_at && found.role !== 'ringing' ? found.call.answered_at : found.call.since;
      } else {
        who.textContent = '';
        delete since.dataset.since;
        since.textContent = '';
      }
      const q = li.querySelector('.agent-queues');
      q.textContent = [queues.length ? t('wall.in_queues', { queues: queues.join('، ') }) : '', paused ? t('ext.paused') : ''].filter(Boolean).join(' · ');
      const talking = Boolean(found && found.role === 'talking');
      for (const button of li.querySelectorAll('.actions button')) {
        const mode = button.dataset.mode;
        button.textContent = t(`sup.${mode}`);
        button.setAttribute('aria-label', t('sup.label', { mode: t(`sup.${mode}`), agent: phone(exten) }));
        button.hidden = !talking;
      }
    });
  };
  return { el, render, supervise };
}

function helpCard(ctx, supervise) {
  const { el, body } = card('wall.help', { cls: 'help-feed' });
  const list = h('ul', { class: 'rows', 'aria-live': 'polite' });
  body.append(list);
  const render = () => {
    const items = ctx.live.state.help.filter((x) => x.type === 'help.requested');
    if (!items.length) {
      replace(list, h('li', { class: 'empty', text: t('wall.help_none') }));
      return;
    }
    keyed(list, items.slice(0, 20), (x) => `${x.operator}@${x.at}`, () => h('li', { class: 'row help-request' },
      h('div', { class: 'row-main' }, h('strong', {}), h('small', { class: 'meta' })), h('div', { class: 'row-actions' })), (li, x) => {
      li.querySelector('strong').textContent = t('wall.help_from', { operator: phone(x.operator) });
      // The ringing's end (help.joined): a manager joined, or nobody answered.
      const ended = ctx.live.state.help.find((j) => j.type === 'help.joined' && j.operator === x.operator && j.at >= x.at);
      const outcome = ended ? ended.result || 'joined' : x.result;
      const result = outcome && outcome !== 'joined' ? t(`help.result.${outcome}`) : '';
      li.querySelector('.meta').textContent = [when(x.at), x.helper ? t('wall.help_to', { helper: phone(x.helper) }) : t('wall.help_nobody'),
        result.startsWith('help.result.') ? outcome : result,
        outcome === 'joined' && ended ? t('wall.help_joined', { helper: phone(ended.helper || '') }) : ''].filter(Boolean).join(' · ');
      const actions = li.querySelector('.row-actions');
      if (supervise && !actions.firstChild && ctx.me.scopes.includes('supervise')) {
        actions.append(h('button', { type: 'button', class: 'small', text: t('sup.whisper'),
          'aria-label': t('sup.label', { mode: t('sup.whisper'), agent: phone(x.operator) }), onclick: () => supervise('whisper', x.operator) }));
      }
    });
  };
  return { el, render };
}

export function mount(root, ctx) {
  const today = new TodayCounts();
  const queues = queuesCard(ctx, today);
  const agents = agentsCard(ctx);
  const help = helpCard(ctx, agents.supervise);
  root.append(h('h1', { class: 'sr-only', text: t('nav.wallboard') }),
    h('div', { class: 'grid wallboard' }, queues.el, help.el, agents.el));
  const render = throttled(() => {
    queues.render();
    agents.render();
    help.render();
  });
  const onChange = (e) => {
    if (e.detail.kind === 'ended') today.count(e.detail.record);
    render();
  };
  ctx.live.addEventListener('change', onChange);
  render();
  today.load().then(render, () => {});
  const midnight = setInterval(() => {
    if (today.day && startOfDay() > today.day) today.load().then(render, () => {});
  }, 60000);
  return () => {
    ctx.live.removeEventListener('change', onChange);
    clearInterval(midnight);
  };
}
