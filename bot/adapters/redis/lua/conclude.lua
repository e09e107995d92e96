-- with_operator -> succeeded | failed | attention: the verdict on what an operator did, once, whichever replica
-- looked.   ARGV: id, now_ms, now_iso, state, outcome, after, after_mac (the world it left, signed; may be ''),
--           history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
if redis.call('HGET', KEYS[1], 'state') ~= 'with_operator' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'outcome', ARGV[5], 'finished_at', ARGV[3], 'after', ARGV[6],
           'after_mac', ARGV[7])
redis.call('SREM', KEYS[13], ARGV[1])
remember(ARGV[8])
audit(ARGV[4], '', ARGV[5])
return kept(1)
