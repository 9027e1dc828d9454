-- Store a new job, due at once, within its key's limits: the accept path's one write.
--
-- KEYS[1] the job's hash      KEYS[4] the tracker's wake list
-- KEYS[2] the key's job index KEYS[5] the key's jobs in flight (accounts)
-- KEYS[3] the pending set     KEYS[6] the key's usage (accounts)
-- ARGV[1] the job id          ARGV[5] the monthly budget, USD ('' : none)
-- ARGV[2] created (time)      ARGV[6] the month, 'YYYY-MM'
-- ARGV[3] when it is due      ARGV[7] the job's estimated cost, USD
-- ARGV[4] the most jobs in flight ('' : no limit)
-- ARGV[8] the hash's fields as one JSON object of strings (packing each field as its own
--         argument cost the accept route more Python time than the rest of the write)
-- Answers {1} when stored, {-1, jobs in flight} or {-2, spend, reserved} when refused.
local job, index, pending, wake, in_flight, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, created, due, max_in_flight, budget = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local period, cost, record_json = ARGV[6], ARGV[7], ARGV[8]

if max_in_flight ~= '' then
  local count = redis.call('HLEN', in_flight)
  if count >= tonumber(max_in_flight) then return {-1, count} end
end
if budget ~= '' then
  local spend = tonumber(redis.call('HGET', usage, 'spend:' .. period) or '0')
  local reserved = math.max(tonumber(redis.call('HGET', usage, 'reserved') or '0'), 0)
  if spend + reserved + tonumber(cost) > tonumber(budget) + 1e-9 then
    return {-2, tostring(spend), tostring(reserved)}
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
return {1}
