// The panel's entry point: log in, build the top bar for the user's role,
// start the live stream, and show the view the address names (#/desk,
// #/wallboard, #/callbacks, #/calls, #/admin).

import * as http from './api.js';
import { $, h, replace } from './dom.js';
import { duration, phone, secondsSince, setZone } from './format.js';
import { lang, setLang, t, translate } from './i18n.js';
import { Live } from './live.js';
import { CallPopup } from './popup.js';
import { toast } from './toast.js';
import * as desk from './views/desk.js';
import * as wallboard from './views/wallboard.js';
import * as callbacks from './views/callbacks.js';
import * as calls from './views/calls.js';
import * as admin from './views/admin.js';

// In menu order; the first one a user may see is where they land.
const VIEWS = {
  wallboard: { module: wallboard, label: 'nav.wallboard', allowed: (me) => me.role !== 'operator' },
  desk: { module: desk, label: 'nav.desk', allowed: (me) => me.phones.length > 0 },
  callbacks: { module: callbacks, label: 'nav.callbacks', allowed: (me) => me.role !== 'operator' && me.scopes.includes('callbacks:read') },
  calls: { module: calls, label: 'nav.calls', allowed: (me) => me.scopes.includes('calls:read') },
  admin: { module: admin, label: 'nav.admin', allowed: (me) => me.scopes.includes('admin') },
};

const ctx = { me: null, settings: null, live: null, popup: null };
let unmount = null;

function views() {
  return Object.entries(VIEWS).filter(([, v]) => v.allowed(ctx.me)).map(([name]) => name);
}

function currentView() {
  const name = (location.hash.match(/^#\/([a-z]+)/) || [])[1];
  const allowed = views();
  return allowed.includes(name) ? name : allowed[0];
}

function show(name) {
  const view = $('#view');
  if (unmount) unmount();
  unmount = null;
  replace(view);
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!name) {
    view.append(h('p', { class: 'empty', text: t('nav.nothing') }));
    return;
  }
  document.title = `${t(VIEWS[name].label)} · ${t('app.title')}`;
  unmount = VIEWS[name].module.mount(view, ctx) || null;
}

function route() {
  if (!ctx.me) return;
  const name = currentView();
  if (name && location.hash !== `#/${name}`) {
    history.replaceState(null, '', `#/${name}`);
  }
  show(name);
}

// --- login / logout ------------------------------------------------------------

function showLogin(message = '') {
  ctx.me = null;
  if (unmount) unmount();
  unmount = null;
  if (ctx.live) ctx.live.stop();
  if (ctx.popup) ctx.popup.stop();
  ctx.live = ctx.popup = null;
  http.setCsrf(null);
  $('#topbar').hidden = true;
  $('#view').hidden = true;
  replace($('#view'));
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  document.title = t('app.title');
  $('#login-name').focus();
}

async function login(event) {
  event.preventDefault();
  const name = $('#login-name').value.trim();
  const password = $('#login-password').value;
  const error = $('#login-error');
  if (!name || !password) {
    error.textContent = t('login.missing');
    return;
  }
  const button = $('#login-form button[type=submit]');
  button.disabled = true;
  error.textContent = '';
  try {
    const me = await http.post('/api/login', { name, password });
    $('#login-password').value = '';
    await enter(me);
  } catch (e) {
    if (e.status === 401) error.textContent = t('login.failed');
    else if (e.status === 429) error.textContent = t('login.limited', { seconds: e.retryAfter || 60 });
    else error.textContent = t('error.network');
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await http.post('/api/logout');
  } catch {
    // the session may be gone already
  }
  showLogin();
}

// --- the logged-in shell -------------------------------------------------------

async function enter(me) {
  ctx.me = me;
  http.setCsrf(me.csrf_token);
  ctx.settings = await http.get('/api/panel/settings');
  setZone(ctx.settings.timezone);
  $('#login').hidden = true;
  buildTopbar();
  $('#topbar').hidden = false;
  $('#view').hidden = false;
  ctx.live = new Live('/api/events', {
    checkSession: async () => {
      try {
        await http.get('/api/me');
        return true;
      } catch (e) {
        return e.status !== 401;
      }
    },
  });
  ctx.live.addEventListener('status', () => showStatus());
  ctx.live.addEventListener('change', (e) => {
    const { kind, data } = e.detail;
    if (kind === 'help.joined' && data && (data.result || 'joined') === 'joined' && ctx.me.phones.includes(data.operator)) {
      toast(t('help.joined', { helper: phone(data.helper || '') }), 'ok', 10000, { id: 'help-joined' });
    }
  });
  ctx.popup = me.phones.length ? new CallPopup($('#call-popup'), ctx) : null;
  ctx.live.start();
  showStatus();
  route();
}

function buildTopbar() {
  const me = ctx.me;
  const nav = $('#nav');
  replace(nav, ...views().map((name) => h('a', { href: `#/${name}`, 'data-view': name, 'data-i18n': VIEWS[name].label, text: t(VIEWS[name].label) })));
  $('#pbx-name').textContent = ctx.settings.pbx;
  $('#user-name').textContent = me.name;
  $('#user-role').textContent = t(`role.${me.role}`);
  $('#user-role').dataset.i18n = `role.${me.role}`;
  const help = $('#help-button');
  help.hidden = !(me.role === 'operator' && me.scopes.includes('help') && me.phones.length && ctx.settings.help.length);
}

function showStatus() {
  const el = $('#live-status');
  const status = ctx.live ? ctx.live.status : 'connecting';
  el.dataset.status = status;
  el.textContent = t(`live.${status}`);
  el.dataset.i18n = `live.${status}`;
}

// Why the server could not send a help request (HelpOut.reason), in words.
const HELP_REASONS = [
  ['not on a call', 'help.why.not_on_call'], ['no helper free', 'help.why.busy'],
  ['no helper known', 'help.why.none'], ['AMI unavailable', 'help.why.ami'],
];

async function askForHelp() {
  const button = $('#help-button');
  const wording = ctx.settings.help[0];
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  const pending = toast(t('help.sending'), 'info', 0);
  try {
    const answer = await http.post('/api/help', { code: wording.code });
    pending.remove();
    const sent = answer.status === 'sent';
    const words = sent ? wording.sent : wording.unavailable;
    const why = sent ? null : HELP_REASONS.find(([needle]) => (answer.reason || '').includes(needle));
    const text = words[lang()] || words.fa || Object.values(words)[0];
    toast(why ? `${text} ${t(why[1])}` : text, sent ? 'ok' : 'warn', 12000,
      { id: 'help-result', dataset: { status: answer.status } });
  } catch (e) {
    pending.remove();
    toast(errorText(e), 'error', 8000, { id: 'help-result', dataset: { status: 'error' } });
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

export function errorText(e) {
  const known = { 0: 'error.network', 401: 'error.401', 403: 'error.403', 404: 'error.404', 409: 'error.409',
    422: 'error.422', 429: 'error.429', 502: 'error.502', 503: 'error.503' };
  const base = t(known[e.status] || 'error.other');
  return e.detail ? `${base} (${e.detail})` : base;
}
ctx.errorText = errorText;

// Durations that tick: any element with data-since (an ISO time) shows the time since.
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-since]')) {
    const s = secondsSince(el.dataset.since, now);
    const text = duration(s);
    if (el.textContent !== text) el.textContent = text;
  }
}

function applyLanguage() {
  translate(document);
  for (const b of document.querySelectorAll('.lang-toggle')) b.lang = lang() === 'fa' ? 'en' : 'fa';
}

function switchLanguage() {
  setLang(lang() === 'fa' ? 'en' : 'fa');
  applyLanguage();
  if (ctx.me) {
    buildTopbar();
    showStatus();
    show(currentView());
    if (ctx.popup) ctx.popup.render();
  }
  tick();
}

async function boot() {
  setLang(lang());
  applyLanguage();
  $('#login-form').addEventListener('submit', login);
  for (const b of document.querySelectorAll('.lang-toggle')) b.addEventListener('click', switchLanguage);
  $('#logout-button').addEventListener('click', logout);
  $('#help-button').addEventListener('click', askForHelp);
  window.addEventListener('hashchange', () => {
    route();
    $('#main').focus({ preventScroll: true }); // a screen reader starts reading the new view
  });
  http.onUnauthenticated(() => {
    if (ctx.me) showLogin(t('login.expired'));
  });
  setInterval(tick, 1000);
  let me = null;
  let problem = '';
  try {
    me = await http.get('/api/me', { quiet401: true });
  } catch (e) {
    problem = e.status === 401 ? '' : errorText(e);
  }
  document.body.classList.remove('booting'); // before focusing anything
  if (!me) {
    showLogin(problem);
    return;
  }
  try {
    await enter(me);
  } catch (e) {
    showLogin(errorText(e));
  }
}

boot();
