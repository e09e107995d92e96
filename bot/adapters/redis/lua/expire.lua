-- KEYS: req, approvals, pending, work, audit   ARGV: id, now_ms, now_iso
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
if redis.call('HGET', KEYS[1], 'state') == 'pending'
   and tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms')) then
  redis.call('HSET', KEYS[1], 'state', 'expired', 'decided_at', ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[1])
  audit('expired', '', '')
  return kept(1)
end
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'unannounced') == '1' then
  redis.call('HDEL', KEYS[1], 'unannounced')
  return kept(1)
end
return 0
