-- The replay check of a batch of Slack requests. KEYS: their nonces; ARGV[1]: how long a nonce is remembered
-- (seconds). Each nonce not yet known is remembered; returns, in the order of KEYS, 1 for a nonce seen the
-- first time and 0 for a replay.
local first = {}
for i, key in ipairs(KEYS) do
  first[i] = redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) and 1 or 0
end
return first
