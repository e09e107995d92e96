-- the requests whose change window has opened go back to the workers' stream, once (the claim checks
-- that each is still approved).
-- KEYS: waiting, work   ARGV: now_ms
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'request', id)
end
return #due
