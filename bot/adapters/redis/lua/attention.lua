-- executing -> attention once the lease has lapsed (a dead worker's request).   ARGV: id, now_ms, now_iso, note, history entry
-- runs after audit.lua (bot/adapters/redis/scripts.py)
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local before = answered_before()
if before then return tonumber(before) end
if redis.call('HGET', KEYS[1], 'state') ~= 'executing' then return 0 end
local t = redis.call('TIME')  -- lapsed by Redis's own clock, as the lease was set
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(redis.call('HGET', KEYS[1], 'lease_until_ms') or '0') >= now_ms then return 0 end
redis.call('HSET', KEYS[1], 'state', 'attention', 'outcome', ARGV[4], 'finished_at', ARGV[3])
redis.call('SREM', KEYS[6], ARGV[1])
remember(ARGV[5])
local holder = redis.call('GET', KEYS[7])
if holder and string.match(holder, '^([^:]+):') == ARGV[1] then redis.call('DEL', KEYS[7]) end
audit('attention', '', ARGV[4])
return kept(1)
