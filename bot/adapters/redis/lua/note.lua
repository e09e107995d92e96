-- an entry of the audit stream the service writes beside a transition (a refusal, a nudge, a note).
-- ARGV: id, now_ms, now_iso, event, actor, detail
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
audit(ARGV[4], ARGV[5], ARGV[6])
return kept(1)
