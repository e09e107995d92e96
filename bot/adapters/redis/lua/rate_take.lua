-- one token bucket: refilled continuously by Redis's own clock (every replica's bucket by the same time, whatever
-- its caller's clock says), taken from in one step.   KEYS: the bucket, this call's own key
-- ARGV: capacity, tokens per ms. The call's key keeps its answer a minute: the take sent again after its reply
-- was lost (redis-py retries on a broken connection) answers the same instead of taking a second token.
-- runs after once.lua
local again = told_before(KEYS[2])
if again then return again end
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return keep(KEYS[2], tostring(wait), 60000)
