local function answer(verdict)
  return {verdict, redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
local function audit(event, actor, detail)
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', event, 'actor', actor, 'at', ARGV[3],
             'detail', detail)
end
