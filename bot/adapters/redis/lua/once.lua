-- A call's own key (store keys.call_key): what the call answered is kept there a while, so the same call sent
-- again after its reply was lost (redis-py resends a command or a pipeline on a broken connection) answers the
-- same instead of running twice.
local ONCE_MS = 600000
-- what this very call answered when it ran before, or false
local function told_before(call)
  return call and redis.call('GET', call)
end
-- ``outcome`` kept under the call's key for ``ms`` (as a string), and returned as it is
local function keep(call, outcome, ms)
  if call then redis.call('SET', call, tostring(outcome), 'PX', ms) end
  return outcome
end
-- each of KEYS[from..] set for ``seconds`` unless it is already: per key, 1 the first time and 0 after
local function first_times(from, seconds)
  local first = {}
  for i = from, #KEYS do
    first[#first + 1] = redis.call('SET', KEYS[i], '1', 'NX', 'EX', seconds) and 1 or 0
  end
  return first
end
