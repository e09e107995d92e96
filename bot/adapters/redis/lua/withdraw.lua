-- approved and waiting for its change window -> cancelled (who may, the service decided).
-- KEYS: req, approvals, pending, work, audit, executing, lock, people, clicks, waiting   ARGV: id, now_ms, now_iso, actor, history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return before end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
if redis.call('HGET', KEYS[1], 'state') ~= 'approved' or (redis.call('HGET', KEYS[1], 'waits_until') or '') == '' then
  return 'not_pending'
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'decided_by', ARGV[4], 'decided_at', ARGV[3])
redis.call('ZREM', KEYS[10], ARGV[1])
remember(ARGV[5])
audit('cancelled', ARGV[4], 'withdrawn while it waited for its change window')
return kept('cancelled')
