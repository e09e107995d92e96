-- reminder ARGV[1] of a pending request went out, once.   KEYS: req, this call's own key
-- the call sent again after its reply was lost answers what its first run did (else the reminder is never sent)
-- runs after once.lua
local again = told_before(KEYS[2])
if again then return tonumber(again) end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'reminders_sent') or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'reminders_sent', ARGV[1])
return keep(KEYS[2], 1, ONCE_MS)
