-- The checks every decision makes first, with every refused click audited once per user, request and
-- verdict (a bounded trail: clicking a decided request a thousand times writes one entry).
-- KEYS: req, approvals, pending, work, audit, executing, lock, people, clicks, waiting, history, recent,
-- with_operator, this call's own (store_base._keys)
-- ARGV: id, now_ms, now_iso, actor, origin ('' = not checked), allowed actions ('*' or one per line), ...
local function refused(verdict, detail)
  if redis.call('SADD', KEYS[9], ARGV[4] .. '|' .. verdict) == 1 then
    if detail ~= '' then detail = verdict .. ': ' .. detail else detail = verdict end
    audit('refused', ARGV[4], detail)
  end
end
local function listed(list, wanted)
  for item in string.gmatch(list, '[^' .. string.char(10) .. ']+') do
    if item == wanted then return true end
  end
  return false
end
-- this very call ran already (the client sent it again after losing the reply): the same answer, nothing again
local answered = answered_before()
if answered then
  return answer(answered)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  refused('not_found', '')
  redis.call('PEXPIRE', KEYS[9], 86400000)
  return {'not_found', 0}
end
local action = redis.call('HGET', KEYS[1], 'action')
local origin = redis.call('HGET', KEYS[1], 'origin') or ''
if ARGV[5] ~= '' and origin ~= '' and origin ~= ARGV[5] then
  refused('wrong_origin', 'clicked in ' .. ARGV[5] .. ', requested in ' .. origin)
  return answer('wrong_origin')
end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  refused('not_pending', '')
  return answer('not_pending')
end
if tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms')) then
  redis.call('HSET', KEYS[1], 'state', 'expired', 'decided_at', ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[1])
  audit('expired', '', '')
  return answer('expired')
end
if ARGV[6] ~= '*' and not listed(ARGV[6], action) then
  refused('not_allowed', 'not in an approver group of ' .. action)
  return answer('not_allowed')
end
