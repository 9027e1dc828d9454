-- The next `most` jobs of one endpoint's queue, shared across keys by stride scheduling:
-- the key with the smallest pass goes next, and its pass grows by its stride (1 / weight),
-- so each key with jobs waiting gets its weight's share of the endpoint's /run budget
-- however many jobs it queued. Within a key, jobs leave in score order (priority, then arrival).
-- KEYS[1] the endpoint's keys (key id -> pass), KEYS[2] strides (key id -> 1/weight),
-- KEYS[3] the endpoint's virtual time (the pass of the last job out), KEYS[4] the set of
-- endpoints with jobs waiting. ARGV[1] most, ARGV[2] the prefix of a key's queue, ARGV[3] the endpoint.
-- Answers the job ids, in the order they should be submitted.
local keys, strides, clock, endpoints = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local most, queue_prefix, endpoint = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = {}
while #out < most do
  local first = redis.call('ZRANGE', keys, 0, 0, 'WITHSCORES')
  if #first == 0 then break end
  local key, pass = first[1], tonumber(first[2])
  local queue = queue_prefix .. key
  local job = redis.call('ZPOPMIN', queue)
  if #job == 0 then
    redis.call('ZREM', keys, key)
  else
    out[#out + 1] = job[1]
    redis.call('SET', clock, tostring(pass))
    if redis.call('ZCARD', queue) == 0 then
      redis.call('ZREM', keys, key)
    else
      redis.call('ZADD', keys, pass + tonumber(redis.call('HGET', strides, key) or '1'), key)
    end
  end
end
if redis.call('ZCARD', keys) == 0 then redis.call('SREM', endpoints, endpoint) end
return out
