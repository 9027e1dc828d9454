-- Jobs join their key's queue on one endpoint; a key that had none waiting joins the
-- endpoint's rotation at its virtual time (no credit saved up while it was away).
-- KEYS[1] the endpoint's keys, KEYS[2] strides, KEYS[3] the virtual time, KEYS[4] the
-- endpoints with jobs waiting. ARGV[1] the endpoint, ARGV[2] the queue prefix, then
-- (key id, stride, job id, score) for each job. A job already waiting keeps its place.
local keys, strides, clock, endpoints = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local endpoint, queue_prefix = ARGV[1], ARGV[2]
local now_pass = redis.call('GET', clock) or '0'
for i = 3, #ARGV, 4 do
  local key, stride, job, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  redis.call('ZADD', queue_prefix .. key, 'NX', score, job)
  redis.call('HSET', strides, key, stride)
  redis.call('ZADD', keys, 'NX', now_pass, key)
end
redis.call('SADD', endpoints, endpoint)
return 1
