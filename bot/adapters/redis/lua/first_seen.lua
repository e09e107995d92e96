-- The replay check of a batch of Slack requests. KEYS[1]: this call's own key; KEYS[2..]: the requests'
-- nonces; ARGV[1]: how long a nonce is remembered (seconds). Each nonce not yet known is remembered; returns, in
-- the order of the nonces, 1 for a nonce seen the first time and 0 for a replay. The answer is kept a minute
-- under the call's key: the call sent again after its reply was lost (redis-py retries on a broken connection)
-- answers the same, where it would find every nonce of its batch known and refuse them all as replays.
local again = redis.call('GET', KEYS[1])
if again then return cjson.decode(again) end
local first = {}
for i = 2, #KEYS do
  first[i - 1] = redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) and 1 or 0
end
redis.call('SET', KEYS[1], cjson.encode(first), 'EX', 60)
return first
