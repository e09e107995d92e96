-- KEYS[14]: this call's own key: the verdict is kept there a while, so the call sent again after its reply was
-- lost answers the same (decision_checks.lua) instead of running twice
local function answer(verdict)
  if KEYS[14] then redis.call('SET', KEYS[14], verdict, 'PX', 600000) end
  return {verdict, redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
-- what this very call answered when it ran before (the client sent it again after losing the reply), or false
local function answered_before()
  return KEYS[14] and redis.call('GET', KEYS[14])
end
-- a step's outcome (a number or a word) kept under this call's key, and returned: see answered_before
local function kept(outcome)
  if KEYS[14] then redis.call('SET', KEYS[14], tostring(outcome), 'PX', 600000) end
  return outcome
end
-- the transition's entry of the request's history, signed by the bot ('' appends nothing)
local function remember(entry)
  if entry ~= nil and entry ~= '' then redis.call('RPUSH', KEYS[11], entry) end
end
local function audit(event, actor, detail)
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', event, 'actor', actor, 'at', ARGV[3],
             'detail', detail)
end
