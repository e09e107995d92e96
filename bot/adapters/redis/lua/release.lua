-- the requests whose change window has opened go back to the workers' stream, once.
-- KEYS: waiting, work   ARGV: now_ms, prefix
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('HGET', ARGV[2] .. ':req:' .. id, 'state') == 'approved' then
    redis.call('XADD', KEYS[2], '*', 'request', id)
  end
end
return #due
