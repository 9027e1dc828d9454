-- Compare-and-set of a job: change its status (and fields) only from an allowed status,
-- with everything the change implies, atomically.
--
-- KEYS[1] the job's hash            KEYS[5] the job's log (stream: SSE, WebSocket)
-- KEYS[2] the pending set           KEYS[6] the key's jobs in flight (accounts)
-- KEYS[3] the event stream          KEYS[7] the key's usage (accounts)
-- KEYS[4] the job's change channel
-- ARGV[1] the new status ('' keeps it)
-- ARGV[2] the statuses it may change from, comma-separated
-- ARGV[3] seconds the record is kept from now (0: no change)
-- ARGV[4] '1' when the job ends: it leaves the pending set, its reservation is released,
--         and a completed job's cost is added to the month's spend
-- ARGV[5] the event, a JSON list of stream field/value pairs ('' for none)
-- ARGV[6] seconds the job's log is kept
-- ARGV[7] the month, 'YYYY-MM'
-- ARGV[8...] hash field/value pairs to write
-- Answers {1, previous status} when applied, {0, current status} when not, {-1, ''} if gone.
local job, pending, events, channel, job_log, in_flight, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local new_status, allowed, record_ttl, ends = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local event, log_ttl, period = ARGV[5], ARGV[6], ARGV[7]
local FIELDS = 8

local current = redis.call('HGET', job, 'status')
if not current then return {-1, ''} end
local may_change = false
for status in string.gmatch(allowed, '[^,]+') do
  if status == current then may_change = true end
end
if not may_change then return {0, current} end

if new_status ~= '' then redis.call('HSET', job, 'status', new_status) end
if #ARGV >= FIELDS then redis.call('HSET', job, unpack(ARGV, FIELDS)) end
if record_ttl > 0 then redis.call('EXPIRE', job, record_ttl) end

if ends then
  local id = redis.call('HGET', job, 'id')
  redis.call('ZREM', pending, id)
  local reserved = redis.call('HGET', in_flight, id)
  if reserved then
    redis.call('HDEL', in_flight, id)
    redis.call('HINCRBYFLOAT', usage, 'reserved', -tonumber(reserved))
  end
  local cost = tonumber(redis.call('HGET', job, 'cost') or '')
  if new_status == 'completed' and cost then
    redis.call('HINCRBYFLOAT', usage, 'spend:' .. period, cost)
    redis.call('HINCRBY', usage, 'jobs:' .. period, 1)
  end
end

if event ~= '' then redis.call('XADD', events, '*', unpack(cjson.decode(event))) end
if new_status ~= '' then
  redis.call('XADD', job_log, 'MAXLEN', '~', '100000', '*', 'type', 'status', 'status', new_status)
  redis.call('EXPIRE', job_log, log_ttl)
  redis.call('PUBLISH', channel, new_status)
end
return {1, current}
