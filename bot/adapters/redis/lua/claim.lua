-- approved -> executing with the domain's lock, once.
-- KEYS: req, approvals, pending, work, audit, executing, lock
-- ARGV: id, now_ms, now_iso, consumer, token, lease_ms, backstop_ms
-- runs after audit.lua (bot/adapters/redis/scripts.py)
local state = redis.call('HGET', KEYS[1], 'state')
-- this very claim ran already (its token is unique: the client sent it again after losing the reply)
if state == 'executing' and redis.call('HGET', KEYS[1], 'lease_token') == ARGV[5] then
  return {'claimed', redis.call('HGET', KEYS[1], 'lease_until_ms')}
end
if state ~= 'approved' then return {'gone'} end
local approved_at = tonumber(redis.call('HGET', KEYS[1], 'approved_at_ms') or '0')
local ttl = tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms'))
          - tonumber(redis.call('HGET', KEYS[1], 'created_at_ms') or '0')
-- a request that waited for its change window has its time to live from the window's opening
local since = math.max(approved_at, tonumber(redis.call('HGET', KEYS[1], 'waits_until_ms') or '0'))
if approved_at > 0 and tonumber(ARGV[2]) - since > ttl then
  local note = 'Approved, but no worker could start it within its time to live; it expired without running. '
               .. 'Request it again if it is still needed.'
  redis.call('HSET', KEYS[1], 'state', 'expired', 'outcome', note, 'finished_at', ARGV[3], 'unannounced', '1')
  redis.call('ZADD', KEYS[3], 0, ARGV[1])  -- the next expiry sweep updates its card
  audit('expired', '', note)
  return {'stale'}
end
-- the domain's lock names the claim that holds it; every step out of executing (finish, the flag of a lapsed
-- lease, the wait for a change window) deletes it in the same script, and it expires by itself should every
-- worker die, so a lock naming another request means that request holds the domain
local holder = redis.call('GET', KEYS[7])
if holder then
  local other = string.match(holder, '^([^:]+):')
  if other ~= ARGV[1] then return {'busy', other} end
end
redis.call('SET', KEYS[7], ARGV[1] .. ':' .. ARGV[5], 'PX', ARGV[7])
-- the lease by Redis's own clock: replicas whose clocks differ agree on when it lapses
local t = redis.call('TIME')
local lease_until = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'state', 'executing', 'claimed_by', ARGV[4], 'claimed_at', ARGV[3],
           'lease_token', ARGV[5], 'lease_until_ms', tostring(lease_until))
redis.call('SADD', KEYS[6], ARGV[1])
audit('claimed', ARGV[4], '')
return {'claimed', tostring(lease_until)}
