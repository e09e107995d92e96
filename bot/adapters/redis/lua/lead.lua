-- the lead of one job across replicas: taken when free, kept (its lease renewed) by its holder
-- KEYS: the lead   ARGV: holder, lease_ms
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
