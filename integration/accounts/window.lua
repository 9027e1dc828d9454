-- The rate limit's sliding window, as a function other scripts include (ratelimit.py's own
-- script, and the accept path's create.lua, which counts a request in the write that stores its job).
--
-- window_key: the key's window (a sorted set of admitted requests, scored by Redis's clock in ms)
-- limit: requests per window; window: its length in ms; member: a unique member for this request
-- Answers {admitted (1/0), requests in the window, ms until the oldest leaves it (0 when
-- admitted: only a refusal's Retry-After tells it), ms until the newest leaves it}.
local function rate_hit(window_key, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window)
  local count = redis.call('ZCARD', window_key)
  local admitted = 0
  if count < limit then
    redis.call('ZADD', window_key, now, member)
    redis.call('PEXPIRE', window_key, window)
    count = count + 1
    admitted = 1
  end
  if admitted == 1 then
    -- The newest: the window empties a window from now. No wait to tell (Retry-After is a refusal's).
    return {admitted, count, 0, window}
  end
  local oldest = redis.call('ZRANGE', window_key, 0, 0, 'WITHSCORES')
  local first = oldest[2] and (tonumber(oldest[2]) + window - now) or 0
  local newest = redis.call('ZRANGE', window_key, -1, -1, 'WITHSCORES')
  local last = newest[2] and (tonumber(newest[2]) + window - now) or 0
  return {admitted, count, first, last}
end
