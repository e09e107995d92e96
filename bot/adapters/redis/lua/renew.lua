-- the lease, extended by its holder only.   ARGV: id, now_ms, now_iso, token, lease_ms, backstop_ms
if redis.call('HGET', KEYS[1], 'state') ~= 'executing' or redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[4] then
  return 0
end
local t = redis.call('TIME')  -- the lease by Redis's own clock, never the caller's
local lease_until = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'lease_until_ms', tostring(lease_until))
if redis.call('GET', KEYS[7]) == ARGV[1] .. ':' .. ARGV[4] then redis.call('PEXPIRE', KEYS[7], ARGV[6]) end
return lease_until
