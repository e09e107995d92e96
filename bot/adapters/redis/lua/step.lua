-- a step of the execution appended to the request's history (the executor's, or what an operator said).
-- ARGV: id, now_ms, now_iso, history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
remember(ARGV[4])
return kept(1)
