-- does the claim still hold? executing, under this claim's token, its lease running for at least margin_ms
-- more, and the domain's lock its own. Read right before the module call: a worker that lost its lease (it
-- was stopped or cut off longer than the lease, and another worker flagged the request) must not act.
-- ARGV: id, now_ms, now_iso, token, margin_ms.   Returns the lease's remaining ms, or 0.
if redis.call('HGET', KEYS[1], 'state') ~= 'executing' or redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[4] then
  return 0
end
if redis.call('GET', KEYS[7]) ~= ARGV[1] .. ':' .. ARGV[4] then return 0 end
local t = redis.call('TIME')  -- by Redis's own clock, as the lease was set
local left = tonumber(redis.call('HGET', KEYS[1], 'lease_until_ms') or '0')
             - (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if left < tonumber(ARGV[5]) then return 0 end
return left
