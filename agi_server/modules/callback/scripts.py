"""The Lua scripts behind :class:`~.requests.CallbackStore`.

Every state change of a callback request is one script, so two servers
never see a half-made change (the key layout is described in
``requests.py``). Each script starts with ``PRELUDE``: ``ARGV[1]`` is the
key prefix ``P`` and the helpers derive every key from it.
"""

PRELUDE = """
local P = ARGV[1]
local function req_key(id) return P .. 'req:' .. id end
local function load(id)
  local flat = redis.call('HGETALL', req_key(id))
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
local function log(id, entry)
  redis.call('RPUSH', req_key(id) .. ':history', cjson.encode(entry))
end
local function open_key(h)
  return P .. 'open:' .. h.module .. ':' .. h.target .. ':' .. h.number
end
-- Free the lease and the agent of the running attempt; the agent stays
-- reserved for its breather (rest_ms) so no server rings it at once again.
local function release(h)
  local token = h.token or ''
  if token == '' then return end
  local lease = P .. 'lease:' .. h.id
  if redis.call('GET', lease) == token then redis.call('DEL', lease) end
  if (h.agent or '') ~= '' then
    local agent = P .. 'agent:' .. h.agent
    if redis.call('GET', agent) == token then
      local rest = tonumber(h.rest_ms or '0') or 0
      if rest > 0 then redis.call('PEXPIRE', agent, math.floor(rest)) else redis.call('DEL', agent) end
    end
  end
end
local function close(h, state, now, result, retention)
  release(h)
  redis.call('HSET', req_key(h.id), 'state', state, 'finished', now, 'token', '', 'result', result)
  redis.call('ZREM', P .. 'due:' .. h.module, h.id)
  local open = open_key(h)
  if redis.call('GET', open) == h.id then redis.call('DEL', open) end
  redis.call('EXPIRE', req_key(h.id), retention)
  redis.call('EXPIRE', req_key(h.id) .. ':history', retention)
end
"""

# ARGV: P, module, target, number, dial, e164, caller, call, now, hold
# hold > 0: the caller is still in the dialogue (a new request waits for
# `hold` seconds, until the caller confirms, leaves or runs out of time:
# SETTLE); 0: a complete request, due now.
REGISTER = PRELUDE + """
local module, target, number, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[9])
local hold = tonumber(ARGV[10]) or 0
local open = P .. 'open:' .. module .. ':' .. target .. ':' .. number
local due = P .. 'due:' .. module
local id = redis.call('GET', open)
if id then
  local h = load(id)
  if h and (h.state == 'pending' or h.state == 'dialing') then
    redis.call('HINCRBY', req_key(id), 'requests', 1)
    redis.call('HSET', req_key(id), 'updated', ARGV[9], 'call', ARGV[8], 'caller', ARGV[7])
    log(id, {at = now, event = 'merged', call = ARGV[8]})
    -- the customer asked again: a pending retry becomes due now (at once,
    -- or when the caller still in the dialogue settles)
    local score = tonumber(redis.call('ZSCORE', due, id) or '0')
    if hold == 0 and h.state == 'pending' and score > now then redis.call('ZADD', due, now, id) end
    return {id, 'merged'}
  end
end
id = tostring(redis.call('INCR', P .. 'seq'))
redis.call('HSET', req_key(id), 'id', id, 'module', module, 'target', target, 'number', number,
  'dial', ARGV[5], 'e164', ARGV[6], 'caller', ARGV[7], 'call', ARGV[8], 'first_call', ARGV[8],
  'created', ARGV[9], 'updated', ARGV[9], 'state', 'pending', 'attempts', 0, 'requests', 1,
  'confirmed', hold > 0 and '0' or '1')
log(id, {at = now, event = 'registered', call = ARGV[8]})
redis.call('SET', open, id)
redis.call('ZADD', P .. 'index', now, id)
redis.call('ZADD', due, now + hold, id)
return {id, 'created'}
"""

# ARGV: P, id, call, number, dial, e164, caller, now, retention
# The caller typed another number before confirming: the request this call
# made (still unconfirmed) takes the new number, or, when that number has
# an open request already, is merged into it. Anything else (not this
# call's, confirmed, being dialled): the new number is registered as usual.
RENUMBER = PRELUDE + """
local id, call, number, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[8])
local h = load(id)
if not h or h.first_call ~= call or h.state ~= 'pending' or h.confirmed ~= '0' then
  return {'', 'not ours'}
end
if h.number == number then return {id, 'created'} end
local old = open_key(h)
local open = P .. 'open:' .. h.module .. ':' .. h.target .. ':' .. number
local other = redis.call('GET', open)
if other and other ~= id then
  local o = load(other)
  if o and (o.state == 'pending' or o.state == 'dialing') then
    redis.call('HINCRBY', req_key(other), 'requests', 1)
    redis.call('HSET', req_key(other), 'updated', ARGV[8], 'call', call, 'caller', ARGV[7])
    log(other, {at = now, event = 'merged', call = call})
    log(id, {at = now, event = 'renumbered', number = number, merged_into = other})
    close(h, 'cancelled', now, 'number changed to ' .. number .. ': merged into request ' .. other,
      tonumber(ARGV[9]))
    return {other, 'merged'}
  end
end
if redis.call('GET', old) == id then redis.call('DEL', old) end
redis.call('SET', open, id)
redis.call('HSET', req_key(id), 'number', number, 'dial', ARGV[5], 'e164', ARGV[6], 'updated', ARGV[8])
log(id, {at = now, event = 'renumbered', previous = h.number, number = number})
return {id, 'created'}
"""

# ARGV: P, id, call, how, now
# The caller is done with the dialogue: `confirmed` it, or left (`hung up`,
# `no confirmation`). A pending request becomes due now, and this call's
# request is marked confirmed or not.
SETTLE = PRELUDE + """
local id, call, how, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local h = load(id)
if not h or (h.state ~= 'pending' and h.state ~= 'dialing') then return '' end
if h.first_call == call and h.confirmed == '0' then
  redis.call('HSET', req_key(id), 'confirmed', how == 'confirmed' and '1' or '0', 'updated', ARGV[5])
end
log(id, {at = now, event = how, call = call})
if h.state == 'pending' then
  local due = P .. 'due:' .. h.module
  local score = tonumber(redis.call('ZSCORE', due, id) or '0')
  if score > now then redis.call('ZADD', due, now, id) end
end
return h.state
"""

# ARGV: P, id, now, lease_ms, agent, owner, max_attempts, retry_interval, rest_ms, retention,
#       max_agent_misses, lapsed_checked (1/0)
# The token counts claims (`claims`), not the customer's attempts: an agent
# who does not answer uses up no attempt (FINISH).
# An attempt whose dialler's lease ran out is taken over only once the
# dialler has seen that none of its channels is still up: without
# lapsed_checked the answer is {0, 'lapsed <agent>'} and nothing changes.
CLAIM = PRELUDE + """
local id, now, lease_ms = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local h = load(id)
if not h then return {0, 'gone'} end
local due = P .. 'due:' .. h.module
if h.state ~= 'pending' and h.state ~= 'dialing' then
  redis.call('ZREM', due, id)
  return {0, 'closed'}
end
local score = redis.call('ZSCORE', due, id)
if (not score) or tonumber(score) > now then return {0, 'not due'} end
local lease = P .. 'lease:' .. id
if redis.call('EXISTS', lease) == 1 then return {0, 'claimed'} end
local attempts = tonumber(h.attempts or '0') or 0
if h.state == 'dialing' then
  if ARGV[12] ~= '1' then return {0, 'lapsed ' .. (h.agent or '')} end
  -- The dialler of this attempt stopped without a result, its lease ran
  -- out and no channel of it is up: the attempt is lost (maybe the
  -- customer was called: it counts); the request is retried (once, by this
  -- claim).
  attempts = attempts + 1
  redis.call('HSET', req_key(id), 'attempts', attempts)
  log(id, {at = now, event = 'interrupted', attempt = attempts, agent = h.agent, owner = h.owner})
  if attempts >= (tonumber(h.max_attempts or ARGV[7]) or 1) then
    close(h, 'failed', now, 'interrupted; no attempts left', tonumber(ARGV[10]))
    return {0, 'failed'}
  end
  release(h)
  redis.call('HSET', req_key(id), 'state', 'pending', 'token', '', 'result', 'interrupted')
end
if (h.preferred or '') ~= '' and h.preferred ~= ARGV[5] then return {0, 'preferred ' .. h.preferred} end
local agent = P .. 'agent:' .. ARGV[5]
if redis.call('EXISTS', agent) == 1 then return {0, 'agent busy'} end
local claims = math.max(tonumber(h.claims or '0') or 0, attempts) + 1
local token = id .. '.' .. claims
redis.call('HSET', req_key(id), 'state', 'dialing', 'claims', claims, 'token', token,
  'agent', ARGV[5], 'owner', ARGV[6], 'started', ARGV[3], 'max_attempts', ARGV[7],
  'retry_interval', ARGV[8], 'rest_ms', ARGV[9], 'max_agent_misses', ARGV[11])
redis.call('SET', lease, token, 'PX', lease_ms)
redis.call('SET', agent, token, 'PX', lease_ms)
redis.call('ZADD', due, now + lease_ms / 1000, id)
return {1, token}
"""

# ARGV: P, id, token, now, lease_ms
RENEW = PRELUDE + """
local id, token, now, lease_ms = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local h = load(id)
if not h or h.state ~= 'dialing' or h.token ~= token then return 0 end
-- Still this attempt's request: a lease that lapsed (Redis slow or down for
-- a while) is taken back, as nobody else has claimed the request since.
local lease = P .. 'lease:' .. id
local holder = redis.call('GET', lease)
if holder and holder ~= token then return 0 end
redis.call('SET', lease, token, 'PX', lease_ms)
local agent = P .. 'agent:' .. h.agent
local busy_with = redis.call('GET', agent)
if (not busy_with) or busy_with == token then redis.call('SET', agent, token, 'PX', lease_ms) end
redis.call('ZADD', P .. 'due:' .. h.module, now + lease_ms / 1000, id)
return 1
"""

# ARGV: P, id, token, now, answered (1/0), result, retention, agent_missed (1/0), max_backoff
# agent_missed: the agent's phone was not answered (or the agent left before
# the customer was dialled). That uses up none of the customer's attempts:
# the agent rests for retry_interval (no callback rings them meanwhile), the
# request is due again at once for the next free agent, then with a back-off
# doubling from retry_interval (at most max_backoff) while rings go
# unanswered; after max_agent_misses it is `failed`.
FINISH = PRELUDE + """
local id, token, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local h = load(id)
if not h or h.state ~= 'dialing' or h.token ~= token then return '' end
local retry = tonumber(h.retry_interval) or 300
if ARGV[8] == '1' then
  local misses = (tonumber(h.agent_misses or '0') or 0) + 1
  local streak = (tonumber(h.agent_streak or '0') or 0) + 1
  redis.call('HSET', req_key(id), 'agent_misses', misses, 'agent_streak', streak)
  log(id, {at = now, event = 'agent missed', agent = h.agent, result = ARGV[6]})
  if misses >= (tonumber(h.max_agent_misses or '10') or 10) then
    close(h, 'failed', now, 'no agent answered (' .. misses .. ' rings): ' .. ARGV[6], tonumber(ARGV[7]))
    return 'failed'
  end
  h.rest_ms = tostring(math.floor(retry * 1000))
  release(h)
  redis.call('HSET', req_key(id), 'state', 'pending', 'token', '', 'result', ARGV[6])
  local delay = 0
  if streak > 1 then delay = math.min(retry * 2 ^ (streak - 2), tonumber(ARGV[9]) or 3600) end
  redis.call('ZADD', P .. 'due:' .. h.module, now + delay, id)
  return 'pending'
end
local attempts = (tonumber(h.attempts) or 0) + 1
redis.call('HSET', req_key(id), 'attempts', attempts, 'agent_streak', 0)
log(id, {at = now, event = 'attempt', attempt = attempts, agent = h.agent, result = ARGV[6]})
if ARGV[5] == '1' then
  close(h, 'done', now, ARGV[6], tonumber(ARGV[7]))
  return 'done'
end
if attempts >= (tonumber(h.max_attempts) or 1) then
  close(h, 'failed', now, ARGV[6], tonumber(ARGV[7]))
  return 'failed'
end
release(h)
redis.call('HSET', req_key(id), 'state', 'pending', 'token', '', 'result', ARGV[6])
redis.call('ZADD', P .. 'due:' .. h.module, now + retry, id)
return 'pending'
"""

# ARGV: P, id, now, reason, only_pending (1/0), retention
CANCEL = PRELUDE + """
local id, now = ARGV[2], tonumber(ARGV[3])
local h = load(id)
if not h then return '' end
if h.state ~= 'pending' and not (h.state == 'dialing' and ARGV[5] ~= '1') then return '' end
log(id, {at = now, event = 'cancelled', reason = ARGV[4]})
close(h, 'cancelled', now, ARGV[4], tonumber(ARGV[6]))
return h.state
"""

# ARGV: P, id, now
RETRY = PRELUDE + """
local id, now = ARGV[2], tonumber(ARGV[3])
local h = load(id)
if not h then return {'', ''} end
if h.state == 'dialing' then return {'dialing', ''} end
local due = P .. 'due:' .. h.module
if h.state ~= 'pending' then
  local open = open_key(h)
  local other = redis.call('GET', open)
  if other and other ~= id then return {'conflict', other} end
  redis.call('SET', open, id)
  redis.call('PERSIST', req_key(id))
  redis.call('PERSIST', req_key(id) .. ':history')
  redis.call('HSET', req_key(id), 'state', 'pending', 'attempts', 0, 'agent_misses', 0, 'agent_streak', 0,
    'token', '', 'result', 'retried by hand')
  redis.call('HDEL', req_key(id), 'finished')
  redis.call('ZADD', P .. 'index', tonumber(h.created) or now, id)
end
log(id, {at = now, event = 'retried', previous = h.state})
redis.call('ZADD', due, now, id)
return {'pending', ''}
"""


# ARGV: P, id, now, agent
REASSIGN = PRELUDE + """
local id, now = ARGV[2], tonumber(ARGV[3])
local h = load(id)
if not h then return '' end
if h.state ~= 'pending' then return h.state end
redis.call('HSET', req_key(id), 'preferred', ARGV[4], 'updated', ARGV[3])
log(id, {at = now, event = 'reassigned', agent = ARGV[4], previous = h.preferred or ''})
return 'pending'
"""
