-- executing -> approved, waiting for the change window, by the claim's holder; the domain's lock released.
-- KEYS: req, approvals, pending, work, audit, executing, lock, people, clicks, waiting
-- ARGV: id, now_ms, now_iso, token, until_ms, until_iso, mac, note, history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[4] or redis.call('HGET', KEYS[1], 'state') ~= 'executing' then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'approved', 'waits_until', ARGV[6], 'waits_until_ms', ARGV[5],
           'waits_mac', ARGV[7], 'outcome', ARGV[8], 'claimed_by', '', 'lease_token', '', 'lease_until_ms', '0')
redis.call('SREM', KEYS[6], ARGV[1])
remember(ARGV[9])
if redis.call('GET', KEYS[7]) == ARGV[1] .. ':' .. ARGV[4] then redis.call('DEL', KEYS[7]) end
redis.call('ZADD', KEYS[10], ARGV[5], ARGV[1])
audit('waiting', '', ARGV[8])
return kept(1)
