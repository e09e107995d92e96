-- a new request: its record, its indexes, its filing in the audit and its history, in one step.
-- KEYS: req, approvals, pending, work, audit, executing, lock, people, clicks, waiting, history, recent
-- ARGV: id, created_ms, created_iso, requester, reason, filed ('1': a second rotation filed approved, with the
--       first's id in ARGV[7]), approved_with, expires_ms, history entry, then the record's fields as pairs
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): filed once, not twice
if answered_before() then return 1 end
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[6] ~= '1' then redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1]) end
redis.call('ZADD', KEYS[12], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', 'requested', 'actor', ARGV[4], 'at', ARGV[3],
           'detail', ARGV[5])
remember(ARGV[9])
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', 'approved', 'actor', '', 'at', ARGV[3],
             'detail', 'together with ' .. ARGV[7])
  redis.call('XADD', KEYS[4], '*', 'request', ARGV[1])
end
return kept(1)
