-- runs after once.lua; KEYS[14]: this call's own key (store_base._keys), where its answer is kept
local function answer(verdict)
  keep(KEYS[14], verdict, ONCE_MS)
  return {verdict, redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
-- what this very call answered when it ran before (the client sent it again after losing the reply), or false
local function answered_before()
  return told_before(KEYS[14])
end
-- a step's outcome (a number or a word) kept under this call's key, and returned: see answered_before
local function kept(outcome)
  return keep(KEYS[14], outcome, ONCE_MS)
end
-- the transition's entry of the request's history, signed by the bot ('' appends nothing)
local function remember(entry)
  if entry ~= nil and entry ~= '' then redis.call('RPUSH', KEYS[11], entry) end
end
local function audit(event, actor, detail)
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', event, 'actor', actor, 'at', ARGV[3],
             'detail', detail)
end
