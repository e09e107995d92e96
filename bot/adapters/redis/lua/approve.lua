-- ARGV 7..12: approval value (JSON with its MAC), identity described, Entra oid, UPN, signed-in time,
-- the actions whose approvals need a verified identity (one per line); ARGV 13: its history entry
-- runs after audit.lua and decision_checks.lua (bot/adapters/redis/scripts.py)
local requester_upn = string.lower(redis.call('HGET', KEYS[1], 'requester_upn') or '')
local same_upn = ARGV[10] ~= '' and string.lower(ARGV[10]) == requester_upn
-- the person, not a name: the requester's Entra object id, resolved when the request was made
local requester_oid = string.lower(redis.call('HGET', KEYS[1], 'requester_oid') or '')
local same_oid = ARGV[9] ~= '' and requester_oid ~= '' and string.lower(ARGV[9]) == requester_oid
if redis.call('HGET', KEYS[1], 'requester') == ARGV[4] or same_upn or same_oid then
  refused('self_approval', 'the requester cannot approve their own request')
  return answer('self_approval')
end
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then
  refused('duplicate', '')
  return answer('duplicate')
end
if ARGV[9] == '' and listed(ARGV[12], action) then
  refused('verify_first', '')
  return answer('verify_first')
end
if ARGV[9] ~= '' and redis.call('HSETNX', KEYS[8], ARGV[9], ARGV[4]) == 0 then
  refused('same_person', ARGV[10] .. ' already approved as ' .. redis.call('HGET', KEYS[8], ARGV[9]))
  return answer('same_person')
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[7])
remember(ARGV[13])
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', 'approved', 'actor', ARGV[4], 'at', ARGV[3],
             'detail', ARGV[8], 'entra_oid', ARGV[9], 'entra_upn', ARGV[10], 'entra_signed_in_at', ARGV[11])
else
  audit('approved', ARGV[4], '')
end
local n = redis.call('HLEN', KEYS[2])
if n >= tonumber(redis.call('HGET', KEYS[1], 'approvals_required')) then
  redis.call('HSET', KEYS[1], 'state', 'approved', 'approved_at', ARGV[3], 'approved_at_ms', ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('XADD', KEYS[4], '*', 'request', ARGV[1])
  return answer('approved')
end
return answer('recorded')
