-- ARGV 7: its history entry
-- runs after audit.lua and decision_checks.lua (bot/adapters/redis/scripts.py)
if redis.call('HGET', KEYS[1], 'requester') ~= ARGV[4] then
  refused('not_requester', 'only the requester can cancel')
  return answer('not_requester')
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'decided_by', ARGV[4], 'decided_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
remember(ARGV[7])
audit('cancelled', ARGV[4], '')
return answer('cancelled')
