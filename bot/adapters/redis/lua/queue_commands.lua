-- A batch of acknowledged commands onto the stream KEYS[1], capped near ARGV[1] entries. ARGV[2..]: one
-- entry each (a JSON document of the command's fields). Returns how many were added.
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'entry', ARGV[i])
end
return #ARGV - 1
