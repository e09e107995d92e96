-- The replay check of a batch of Slack requests. KEYS[1]: this call's own key; KEYS[2..]: the requests'
-- nonces; ARGV[1]: how long a nonce is remembered (seconds). Each nonce not yet known is remembered; returns, in
-- the order of the nonces, 1 for a nonce seen the first time and 0 for a replay. The answer is kept a minute
-- under the call's key: the call sent again after its reply was lost (redis-py retries on a broken connection)
-- answers the same, where it would find every nonce of its batch known and refuse them all as replays.
-- runs after once.lua
local again = told_before(KEYS[1])
if again then return cjson.decode(again) end
local first = first_times(2, ARGV[1])
keep(KEYS[1], cjson.encode(first), 60000)
return first
