// The live picture of the PBX: a snapshot from the event stream first, then
// every event applied to it. Views read `live.state` and listen for
// "change"; "status" tells whether the stream is up.
//
// EventSource reconnects by itself after a network error (sending the last
// event id, so the server resumes or sends a fresh snapshot). When the
// server refuses the stream (EventSource gives up: readyState CLOSED) the
// panel reconnects itself with a backoff, after checking the session (a 401
// shows the login page). A server that sends visible pings (`event: ping`)
// also lets the panel notice a half-open stream: nothing for `quietAfter`.

export const EVENT_TYPES = [
  'call.started', 'call.answered', 'call.ended', 'call.decision',
  'channel.created', 'channel.hungup', 'dial.began', 'dial.ended',
  'bridge.entered', 'bridge.left',
  'queue.caller_joined', 'queue.caller_left', 'queue.caller_abandoned',
  'queue.agent_called', 'queue.agent_noanswer', 'queue.member', 'agent.paused',
  'extension.state', 'device.state',
  'callback.requested', 'callback.dialled', 'callback.done',
  'reconnect.hit', 'help.requested', 'help.joined',
];

const BACKOFF = [1000, 2000, 5000, 10000, 20000];
const RESYNC_EVERY = 2000; // at most one fresh snapshot for new calls per this many ms
// Events that may be the first this user sees of a call in progress.
const JOINING = new Set(['call.answered', 'call.decision', 'dial.began', 'queue.agent_called', 'bridge.entered',
  'queue.caller_joined', 'dial.ended', 'queue.agent_noanswer']);
const HELP_KEPT = 50;
const ENDED_KEPT = 200;

function emptyState() {
  return {
    calls: new Map(), // call_id -> live call
    extensions: new Map(), // extension -> {extension, context, status, status_text, since}
    queues: new Map(), // queue -> {waiting: Map(call_id -> caller), members: Map(interface -> member)}
    help: [], // newest first
    ended: new Map(), // call_id -> call.ended record (the last ENDED_KEPT)
  };
}

function queueOf(state, name) {
  let q = state.queues.get(name);
  if (!q) {
    q = { waiting: new Map(), members: new Map() };
    state.queues.set(name, q);
  }
  return q;
}

function liveCall(raw) {
  return {
    call_id: raw.call_id, direction: raw.direction || 'incoming', phase: raw.phase || 'dialplan',
    caller: raw.caller ?? null, caller_name: raw.caller_name ?? null, number: raw.number ?? null,
    did: raw.did ?? null, from_extension: raw.from_extension ?? null, queue: raw.queue ?? null,
    answered_by: raw.answered_by ?? null, since: raw.since ?? null, answered_at: raw.answered_at ?? null,
    extensions: [...(raw.extensions || [])], ringing: new Set(raw.ringing || []),
    decisions: [...(raw.decisions || [])], partial: Boolean(raw.partial),
  };
}

function addParty(call, exten) {
  if (exten && !call.extensions.includes(exten)) call.extensions.push(exten);
}

export class Live extends EventTarget {
  constructor(url = '/api/events', { checkSession = async () => true, quietAfter = 75000 } = {}) {
    super();
    this.url = url;
    this.checkSession = checkSession;
    this.quietAfter = quietAfter; // no byte for this long (the server pings more often): reconnect
    this.state = emptyState();
    this.status = 'connecting';
    this.source = null;
    this.attempt = 0;
    this.timer = null;
    this.watchdog = null;
    this.stopped = true;
    this.lastEventId = null;
    this.pings = false; // armed by the first `event: ping`
    this.resyncTimer = null;
    this.lastResync = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.resyncTimer);
    clearTimeout(this.watchdog);
    if (this.source) this.source.close();
    this.source = null;
    this.state = emptyState();
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: status }));
  }

  changed(kind, detail = {}) {
    this.dispatchEvent(new CustomEvent('change', { detail: { kind, ...detail } }));
  }

  connect(quiet = false) {
    if (this.stopped) return;
    if (this.source) this.source.close();
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    if (!quiet) this.setStatus(this.attempt ? 'lost' : 'connecting');
    source.onopen = () => {
      this.attempt = 0;
      this.alive();
      this.setStatus('live');
    };
    source.onerror = () => {
      if (source !== this.source) return;
      clearTimeout(this.watchdog);
      this.setStatus('lost');
      if (source.readyState === EventSource.CLOSED) this.retry();
      // else: EventSource is reconnecting by itself (Last-Event-ID sent).
    };
    source.addEventListener('snapshot', (e) => this.frame(e, () => this.applySnapshot(JSON.parse(e.data))));
    source.addEventListener('ping', (e) => this.frame(e, () => {
      this.pings = true;
    }));
    source.onmessage = (e) => this.frame(e, () => {});
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (e) => this.frame(e, () => this.apply(type, JSON.parse(e.data))));
    }
  }

  frame(e, fn) {
    if (e.target !== this.source) return;
    if (e.lastEventId) this.lastEventId = e.lastEventId;
    this.alive();
    if (this.status !== 'live') {
      this.attempt = 0;
      this.setStatus('live');
    }
    try {
      fn();
    } catch (error) {
      console.error('live event not applied', e.type, error);
    }
  }

  alive() {
    clearTimeout(this.watchdog);
    if (!this.pings) return;
    this.watchdog = setTimeout(() => {
      // A half-open connection: nothing (not even a ping) for too long.
      this.setStatus('lost');
      this.retry();
    }, this.quietAfter);
  }

  async retry() {
    if (this.stopped) return;
    if (this.source) this.source.close();
    this.source = null;
    const wait = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      let ok = true;
      try {
        ok = await this.checkSession();
      } catch {
        ok = true; // the server is away: try the stream anyway
      }
      if (ok && !this.stopped) this.connect();
    }, wait);
  }

  /** A fresh snapshot soon (a new stream), at most once per RESYNC_EVERY. */
  resync() {
    if (this.resyncTimer || this.stopped) return;
    const wait = Math.max(0, this.lastResync + RESYNC_EVERY - Date.now());
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      this.lastResync = Date.now();
      if (this.status === 'live') this.connect(true);
    }, wait);
  }

  // --- the picture ---------------------------------------------------------

  applySnapshot(body) {
    const snap = body && body.type === 'snapshot' && body.data ? body.data : body;
    const state = emptyState();
    state.help = this.state.help;
    state.ended = this.state.ended;
    for (const raw of snap.calls || []) state.calls.set(raw.call_id, liveCall(raw));
    for (const ext of snap.extensions || []) state.extensions.set(ext.extension, { ...ext });
    for (const [name, q] of Object.entries(snap.queues || {})) {
      const queue = queueOf(state, name);
      for (const w of q.waiting || []) queue.waiting.set(w.call_id, { ...w });
      for (const m of q.members || []) queue.members.set(m.interface || m.extension, { ...m });
      for (const key of ['completed', 'abandoned', 'service_level', 'service_level_perf']) {
        if (q[key] !== undefined) queue[key] = q[key];
      }
    }
    for (const h of snap.help || []) state.help.unshift(h);
    this.state = state;
    this.changed('snapshot');
  }

  apply(type, envelope) {
    const data = envelope.data || {};
    const at = envelope.at || new Date().toISOString();
    const s = this.state;
    let call = data.call_id ? s.calls.get(data.call_id) : undefined;
    if (!call && JOINING.has(type) && !s.ended.has(data.call_id)) {
      // A call already in progress that this user just joined: what the event says, then the snapshot.
      call = liveCall({ call_id: data.call_id, direction: data.queue ? 'incoming' : 'unknown', caller: data.caller,
        number: data.caller, queue: data.queue, since: at, partial: true });
      call.joined = true;
      s.calls.set(call.call_id, call);
      this.resync();
    }
    switch (type) {
      case 'call.started': {
        const started = liveCall({ ...data, since: at, phase: 'dialplan' });
        started.number = data.direction === 'incoming' ? data.caller : null;
        const known = s.calls.get(started.call_id);
        if (!known) s.calls.set(started.call_id, started);
        else {
          // what the call's start says wins over what a first glimpse guessed
          for (const key of ['direction', 'caller', 'caller_name', 'did', 'from_extension', 'number']) known[key] = started[key];
          known.partial = false;
          known.joined = false;
        }
        addParty(s.calls.get(started.call_id), data.from_extension);
        break;
      }
      case 'call.answered':
        if (call) {
          call.phase = 'talking';
          call.answered_by = data.extension || call.answered_by;
          call.answered_at = at;
          call.queue = data.queue || call.queue;
          call.ringing.clear();
          addParty(call, data.extension);
        }
        break;
      case 'call.ended': {
        const record = data;
        s.calls.delete(record.id);
        s.ended.set(record.id, record);
        if (s.ended.size > ENDED_KEPT) s.ended.delete(s.ended.keys().next().value);
        for (const q of s.queues.values()) q.waiting.delete(record.id);
        this.changed('ended', { record });
        break;
      }
      case 'call.decision':
      case 'reconnect.hit':
        if (call) call.decisions.push({ ...data, type, at });
        break;
      case 'dial.began':
      case 'queue.agent_called':
        if (call && data.extension) {
          addParty(call, data.extension);
          if (call.phase !== 'talking') call.ringing.add(data.extension);
          if (call.phase === 'dialplan') call.phase = 'ringing';
        }
        break;
      case 'dial.ended':
        // Who answered is the tracker's call (call.answered); a leg's end only stops its ringing.
        if (call && data.extension) call.ringing.delete(data.extension);
        if (call && call.phase === 'ringing' && call.ringing.size === 0) call.phase = 'dialplan';
        break;
      case 'queue.agent_noanswer':
        if (call && data.extension) call.ringing.delete(data.extension);
        break;
      case 'channel.hungup':
        if (call && data.extension) call.ringing.delete(data.extension);
        break;
      case 'bridge.entered':
        if (call) addParty(call, data.extension);
        break;
      case 'queue.caller_joined': {
        queueOf(s, data.queue).waiting.set(data.call_id, {
          call_id: data.call_id, position: data.position, since: at, caller: data.caller,
        });
        if (call) {
          call.phase = 'queued';
          call.queue = data.queue;
        }
        break;
      }
      case 'queue.caller_left':
      case 'queue.caller_abandoned':
        queueOf(s, data.queue).waiting.delete(data.call_id);
        if (call && call.phase === 'queued') call.phase = call.ringing.size ? 'ringing' : 'dialplan';
        break;
      case 'queue.member':
      case 'agent.paused': {
        const q = queueOf(s, data.queue);
        const key = data.interface || data.extension;
        q.members.set(key, { ...(q.members.get(key) || {}), ...data });
        break;
      }
      case 'extension.state':
        s.extensions.set(data.extension, { ...data, since: at });
        break;
      case 'help.requested':
      case 'help.joined':
        s.help.unshift({ ...data, type, at });
        s.help.length = Math.min(s.help.length, HELP_KEPT);
        break;
      default:
        break;
    }
    this.changed(type, { data, at });
  }
}

// --- reading the picture ---------------------------------------------------

/** The live call an extension is in, and how: {call, role: 'talking'|'ringing'|'calling'}. */
export function callOf(state, exten) {
  let best = null;
  for (const call of state.calls.values()) {
    let role = null;
    if (call.answered_by === exten && call.phase === 'talking') role = 'talking';
    else if (call.from_extension === exten) role = call.phase === 'talking' ? 'talking' : 'calling';
    else if (call.ringing.has(exten)) role = 'ringing';
    else if (!call.answered_by && call.extensions.includes(exten) && ['ringing', 'queued'].includes(call.phase)) {
      const ext = state.extensions.get(exten);
      if (!ext || (ext.status & 8) === 8) role = 'ringing';
    }
    if (!role) continue;
    const rank = { talking: 3, calling: 2, ringing: 1 }[role];
    if (!best || rank > best.rank) best = { call, role, rank };
  }
  return best;
}

/** Whom `exten` talks to (or is rung by) in `call`: a number or an extension. */
export function otherParty(call, exten) {
  if (call.from_extension === exten) {
    if (call.direction === 'outgoing') return call.number;
    return call.answered_by || call.extensions.find((e) => e !== exten) || null;
  }
  if (call.direction === 'internal') return call.from_extension;
  return call.caller || call.number;
}
