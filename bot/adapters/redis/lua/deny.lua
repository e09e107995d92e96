-- ARGV 7: the reason; 8: its history entry
-- runs after audit.lua and decision_checks.lua (bot/adapters/redis/scripts.py)
redis.call('HSET', KEYS[1], 'state', 'denied', 'decided_by', ARGV[4], 'decision_reason', ARGV[7],
           'decided_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
remember(ARGV[8])
audit('denied', ARGV[4], ARGV[7])
return answer('denied')
