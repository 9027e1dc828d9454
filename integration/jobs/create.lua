-- Store a new job, due at once, within its key's limits: the accept path's one write.
-- (Loaded after accounts/window.lua, whose `rate_hit` counts the request when asked.)
--
-- KEYS[1] the job's hash      KEYS[4] the tracker's wake list
-- KEYS[2] the key's job index KEYS[5] the key's jobs in flight (accounts)
-- KEYS[3] the pending set     KEYS[6] the key's usage (accounts)
-- KEYS[7] the key's rate-limit window (accounts)
-- ARGV[1] the job id          ARGV[5] the monthly budget, USD ('' : none)
-- ARGV[2] created (time)      ARGV[6] the month, 'YYYY-MM'
-- ARGV[3] when it is due      ARGV[7] the job's estimated cost, USD
-- ARGV[4] the most jobs in flight ('' : no limit)
-- ARGV[8] the hash's fields as one JSON object of strings (packing each field as its own
--         argument cost the accept route more Python time than the rest of the write)
-- ARGV[9] requests per minute to count this request against ('': it was counted before)
-- ARGV[10] the window in ms      ARGV[11] a unique member for the window
-- Answers {1} when stored, {-1, jobs in flight} or {-2, spend, reserved} when refused by a
-- limit, {-3} by the rate limit; when the request was counted here, `rate_hit`'s four
-- numbers follow.
local job, index, pending, wake, in_flight, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, created, due, max_in_flight, budget = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local period, cost, record_json = ARGV[6], ARGV[7], ARGV[8]
local rate_limit = ARGV[9]

local rate = {}
local function answer(head)
  for _, value in ipairs(rate) do head[#head + 1] = value end
  return head
end

if rate_limit ~= '' then
  rate = rate_hit(KEYS[7], tonumber(rate_limit), tonumber(ARGV[10]), ARGV[11])
  if rate[1] == 0 then return answer({-3}) end
end
if max_in_flight ~= '' then
  local count = redis.call('HLEN', in_flight)
  if count >= tonumber(max_in_flight) then return answer({-1, count}) end
end
if budget ~= '' then
  local spend = tonumber(redis.call('HGET', usage, 'spend:' .. period) or '0')
  local reserved = math.max(tonumber(redis.call('HGET', usage, 'reserved') or '0'), 0)
  if spend + reserved + tonumber(cost) > tonumber(budget) + 1e-9 then
    return answer({-2, tostring(spend), tostring(reserved)})
  end
end

redis.call('HSET', in_flight, id, cost)
redis.call('HINCRBYFLOAT', usage, 'reserved', cost)
local record = {}
for name, value in pairs(cjson.decode(record_json)) do
  record[#record + 1] = name
  record[#record + 1] = value
end
redis.call('HSET', job, unpack(record))
redis.call('ZADD', index, created, id)
redis.call('ZADD', pending, due, id)
redis.call('LPUSH', wake, id)
redis.call('LTRIM', wake, 0, 0)
return answer({1})
