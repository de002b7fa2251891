// The current call of the logged-in user's phone, popping up over any view:
// who calls (number, line type, mobile operator, area), how the system
// routed the call, and the earlier calls from the same number.

import * as http from './api.js';
import { h, replace } from './dom.js';
import { digits, duration, phone, when } from './format.js';
import { t } from './i18n.js';
import { areaName, carrierName, moduleName, numberType } from './labels.js';
import { callOf, otherParty } from './live.js';

const HISTORY = 6;

export function callsOf(reply) {
  if (Array.isArray(reply)) return reply;
  return (reply && (reply.calls || reply.items || reply.records)) || [];
}

export class CallPopup {
  constructor(el, ctx) {
    this.el = el;
    this.ctx = ctx;
    this.shown = null; // {call_id, ended, record?}
    this.dismissed = new Set();
    this.info = new Map(); // number -> {number: NumberOut|null, history: [...]}
    this.fetched = new Map(); // call_id -> call record (decisions of a call opened mid-way)
    this.onChange = (e) => this.changed(e.detail);
    ctx.live.addEventListener('change', this.onChange);
    this.build();
    this.render();
  }

  stop() {
    this.ctx.live.removeEventListener('change', this.onChange);
    this.el.hidden = true;
    replace(this.el);
  }

  build() {
    this.title = h('h2', { id: 'popup-title' });
    this.phase = h('span', { class: 'badge' });
    this.close = h('button', { type: 'button', class: 'icon', 'aria-label': t('call.close'), onclick: () => this.dismiss() }, '×');
    this.number = h('p', { class: 'popup-number', dir: 'ltr' });
    this.name = h('p', { class: 'popup-name' });
    this.facts = h('dl', { class: 'facts' });
    this.decisions = h('ol', { class: 'decisions' });
    this.history = h('ul', { class: 'history' });
    this.announce = h('p', { class: 'sr-only', 'aria-live': 'assertive' });
    replace(this.el,
      h('header', { class: 'popup-head' }, this.title, this.phase, this.close),
      this.number, this.name, this.facts,
      h('h3', { 'data-i18n': 'call.decisions', text: t('call.decisions') }), this.decisions,
      h('h3', { 'data-i18n': 'call.history', text: t('call.history') }), this.history,
      this.announce);
    this.el.setAttribute('aria-labelledby', 'popup-title');
  }

  dismiss() {
    if (this.shown) this.dismissed.add(this.shown.call_id);
    this.shown = null;
    this.el.hidden = true;
  }

  changed(detail) {
    if (detail.kind === 'ended' && this.shown && detail.record.id === this.shown.call_id) {
      this.shown = { call_id: detail.record.id, ended: true, record: detail.record };
    }
    this.render();
  }

  mine() {
    const state = this.ctx.live.state;
    let best = null;
    for (const exten of this.ctx.me.phones) {
      const found = callOf(state, exten);
      if (found && (!best || found.rank > best.rank)) best = { ...found, exten };
    }
    return best;
  }

  render() {
    const found = this.mine();
    if (found && !this.dismissed.has(found.call.call_id)) {
      const isNew = !this.shown || this.shown.call_id !== found.call.call_id || this.shown.ended;
      this.shown = { call_id: found.call.call_id, ended: false };
      this.show(found.call, found.role, found.exten, isNew);
    } else if (this.shown && this.shown.ended && this.shown.record) {
      this.showEnded(this.shown.record);
    } else if (this.shown && !this.shown.ended) {
      // The call went on without this phone (another agent answered).
      this.shown = null;
      this.el.hidden = true;
    } else {
      this.el.hidden = true;
    }
  }

  show(call, role, exten, isNew) {
    const other = otherParty(call, exten);
    const outside = call.direction !== 'internal' && other && other !== call.from_extension;
    const known = ['incoming', 'outgoing', 'internal'].includes(call.direction);
    const titleKey = role === 'ringing' ? 'call.ringing_title' : (known ? `call.${call.direction}` : 'call.popup');
    this.title.textContent = t(titleKey);
    this.title.dataset.i18n = titleKey;
    const phaseKey = `call.phase.${role === 'ringing' ? 'ringing' : call.phase}`;
    this.phase.className = `badge phase-${role === 'ringing' ? 'ringing' : call.phase}`;
    this.phase.textContent = t(phaseKey);
    this.number.textContent = other ? phone(other) : t(call.partial ? 'call.unknown' : 'call.anonymous');
    this.name.textContent = call.caller_name && call.caller_name !== other ? call.caller_name : '';
    this.el.dataset.callId = call.call_id;
    this.el.dataset.phase = role === 'ringing' ? 'ringing' : call.phase;
    this.el.hidden = false;
    const info = outside ? this.lookup(other, call.call_id) : null;
    this.renderFacts(call, info);
    this.renderDecisions(call.decisions.length ? call.decisions : (this.fetched.get(call.call_id)?.decisions || []));
    this.renderHistory(info, call.call_id, outside);
    if (isNew) {
      this.announce.textContent = t('call.announce', { number: other ? phone(other) : t(call.partial ? 'call.unknown' : 'call.anonymous') });
      if (call.partial || !call.decisions.length) this.fetchRecord(call.call_id);
    }
  }

  showEnded(record) {
    this.phase.className = 'badge phase-ended';
    this.phase.textContent = t('call.phase.ended');
    this.el.dataset.phase = 'ended';
    const since = this.facts.querySelector('[data-since]');
    if (since) {
      since.removeAttribute('data-since');
      since.textContent = duration(record.talk || record.duration || 0);
    }
    if (record.decisions && record.decisions.length) this.renderDecisions(record.decisions);
  }

  fact(key, value, attrs = {}) {
    if (value === null || value === undefined || value === '') return [];
    return [h('dt', { 'data-i18n': key, text: t(key) }), h('dd', attrs, value)];
  }

  renderFacts(call, info) {
    const n = info && info.number;
    const since = call.answered_at || call.since;
    replace(this.facts,
      this.fact('call.type', n ? numberType(n) : null),
      this.fact('call.operator', n ? carrierName(n.operator) : null),
      this.fact('call.area', n && n.area ? [digits(n.area), areaName(n.area, this.ctx.settings.country_code) ? ` (${areaName(n.area, this.ctx.settings.country_code)})` : ''].join('') : null),
      this.fact('call.queue', call.queue, { dir: 'ltr' }),
      this.fact('call.did', call.did ? phone(call.did) : null, { dir: 'ltr' }),
      this.fact('call.duration', since ? duration(0) : null, { 'data-since': since, class: 'ticking' }));
  }

  renderDecisions(decisions) {
    if (!decisions.length) {
      replace(this.decisions, h('li', { class: 'empty', text: t('call.decisions_none') }));
      return;
    }
    replace(this.decisions, ...decisions.map((d) => h('li', {},
      h('strong', {}, `${moduleName(d.module || 'reconnect')} ${digits(d.code || '')}`), ' ← ',
      h('span', { dir: 'ltr' }, d.outcome || d.result || ''),
      d.reason ? h('small', { dir: 'ltr' }, ` ${d.reason}`) : null)));
  }

  renderHistory(info, callId, outside) {
    if (!outside) {
      replace(this.history, h('li', { class: 'empty', text: t('call.history_internal') }));
      return;
    }
    if (!info || !info.loaded) {
      replace(this.history, h('li', { class: 'empty', text: t('loading') }));
      return;
    }
    const earlier = info.history.filter((r) => r.id !== callId).slice(0, HISTORY - 1);
    if (!earlier.length) {
      replace(this.history, h('li', { class: 'empty', text: t('call.history_none') }));
      return;
    }
    replace(this.history, ...earlier.map((r) => h('li', {},
      h('time', { datetime: r.started_at || '' }, when(r.started_at)), ' · ',
      t(`direction.${r.direction}`), ' · ', t(`status.${r.status}`),
      r.answered_by ? [' · ', t('call.with_extension', { extension: phone(r.answered_by) })] : null,
      r.talk ? [' · ', duration(r.talk)] : null)));
    this.history.setAttribute('aria-label', t('call.history'));
  }

  lookup(number, callId) {
    let info = this.info.get(number);
    if (info) return info;
    info = { loaded: false, number: null, history: [] };
    this.info.set(number, info);
    (async () => {
      try {
        info.number = await http.get(`/api/panel/number${http.query({ number })}`);
      } catch {
        info.number = null;
      }
      try {
        const key = (info.number && info.number.national) || number;
        info.history = callsOf(await http.get(`/api/calls${http.query({ number: key, limit: HISTORY })}`));
      } catch {
        info.history = [];
      }
      info.loaded = true;
      if (this.shown && this.shown.call_id === callId) this.render();
    })();
    return info;
  }

  async fetchRecord(callId) {
    if (this.fetched.has(callId)) return;
    this.fetched.set(callId, null);
    try {
      const record = await http.get(`/api/calls/${encodeURIComponent(callId)}`);
      this.fetched.set(callId, record);
      if (this.shown && this.shown.call_id === callId) this.render();
    } catch {
      // not in the log yet: the live decisions are all there is
    }
  }
}

