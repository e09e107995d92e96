-- A sign-in's ticket taken at most once.   KEYS: the ticket, its used-marker, this call's own key
-- ARGV[1]: how long the used-marker is kept (ms). The call's key keeps what it took ten minutes: the call sent
-- again after its reply was lost (redis-py retries on a broken connection) gets the same ticket, where it would
-- find only the used-marker and refuse the approver's own sign-in as a replay.
local again = KEYS[3] and redis.call('GET', KEYS[3])
if again then return again end
local ticket = redis.call('GET', KEYS[1])
if ticket then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ticket, 'PX', ARGV[1])
  if KEYS[3] then redis.call('SET', KEYS[3], ticket, 'PX', 600000) end
end
return ticket
