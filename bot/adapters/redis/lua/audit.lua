local function answer(verdict)
  return {verdict, redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
-- the transition's entry of the request's history, signed by the bot ('' appends nothing)
local function remember(entry)
  if entry ~= nil and entry ~= '' then redis.call('RPUSH', KEYS[11], entry) end
end
local function audit(event, actor, detail)
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', event, 'actor', actor, 'at', ARGV[3],
             'detail', detail)
end
