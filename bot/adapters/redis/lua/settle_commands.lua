-- Commands a worker took from the stream: acknowledged, deleted, and each marked taken (a copy left by a write
-- retried after its reply was lost finds the mark and is dropped, so no command runs twice).
-- KEYS[1]: the stream; KEYS[2]: this call's own key; KEYS[3..]: each entry's taken-mark
-- ARGV[1]: the consumer group; ARGV[2]: how long a mark is kept (seconds); ARGV[3..]: the entries' ids
-- Returns, per entry, 1 when taken the first time. The answer is kept a minute under the call's key: the call
-- sent again after its reply was lost answers the same, where it would find every mark set and drop them all.
-- runs after once.lua
local again = told_before(KEYS[2])
if again then return cjson.decode(again) end
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
local first = first_times(3, ARGV[2])
keep(KEYS[2], cjson.encode(first), 60000)
return first
