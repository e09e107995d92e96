-- reminder ARGV[1] of a pending request went out, once.   KEYS: req
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'reminders_sent') or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'reminders_sent', ARGV[1])
return 1
