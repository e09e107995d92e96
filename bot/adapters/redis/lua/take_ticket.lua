-- A sign-in's ticket taken at most once.   KEYS: the ticket, its used-marker, this call's own key
-- ARGV[1]: how long the used-marker is kept (ms). The call's key keeps what it took ten minutes: the call sent
-- again after its reply was lost (redis-py retries on a broken connection) gets the same ticket, where it would
-- find only the used-marker and refuse the approver's own sign-in as a replay.
-- runs after once.lua
local again = told_before(KEYS[3])
if again then return again end
local ticket = redis.call('GET', KEYS[1])
if ticket then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ticket, 'PX', ARGV[1])
  keep(KEYS[3], ticket, ONCE_MS)
end
return ticket
