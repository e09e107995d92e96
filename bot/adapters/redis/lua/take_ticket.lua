local ticket = redis.call('GET', KEYS[1])
if ticket then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ticket, 'PX', ARGV[1])
end
return ticket
