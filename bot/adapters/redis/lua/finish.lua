-- executing -> succeeded | failed | attention | with_operator (handed to an operator), by the claim's holder.
-- ARGV: id, now_ms, now_iso, token, state, outcome, after, after_mac (the world the change left, signed; may be ''),
--       history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return before end
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[4] then return 'not_ours' end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'attention' then
  redis.call('HSET', KEYS[1], 'late_outcome', ARGV[5] .. ': ' .. ARGV[6])
  audit('finished_late', '', ARGV[5] .. ': ' .. ARGV[6])
  remember(ARGV[9])
  return kept('late')
end
if state ~= 'executing' then return 'not_ours' end
redis.call('HSET', KEYS[1], 'state', ARGV[5], 'outcome', ARGV[6], 'finished_at', ARGV[3],
           'after', ARGV[7] or '', 'after_mac', ARGV[8] or '')
redis.call('SREM', KEYS[6], ARGV[1])
if ARGV[5] == 'with_operator' then redis.call('SADD', KEYS[13], ARGV[1]) end
remember(ARGV[9])
if redis.call('GET', KEYS[7]) == ARGV[1] .. ':' .. ARGV[4] then redis.call('DEL', KEYS[7]) end
audit(ARGV[5], '', ARGV[6])
return kept('finished')
