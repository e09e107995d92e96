-- with_operator -> with_operator, handed to another operator: only while the request's history is as long as the
-- caller saw it (no look concluded it, nobody else took it over, its operator said nothing since).
-- ARGV: id, now_ms, now_iso, history length seen, history entry (the new handover, signed), actor, detail
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
if redis.call('HGET', KEYS[1], 'state') ~= 'with_operator' then return 0 end
if redis.call('LLEN', KEYS[11]) ~= tonumber(ARGV[4]) then return 0 end
remember(ARGV[5])
audit('taken_over', ARGV[6], ARGV[7])
return kept(1)
