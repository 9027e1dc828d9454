-- An API key by the hash of its secret, in one round trip: its id, then its record's admin
-- flag and limit fields.
--
-- KEYS[1] the hash -> key id entry
-- ARGV[1] the prefix of key records ('pr:key:'), ARGV[2...] the limit fields to read
-- Answers {} for no such key, else {id, admin, limit values...} (nil where a field is unset).
-- The record's name is made here from the id, which only this script knows before it runs.
local id = redis.call('GET', KEYS[1])
if not id then return {} end
local fields = {'admin'}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
local values = redis.call('HMGET', ARGV[1] .. id, unpack(fields))
local answer = {id}
for i = 1, #fields do answer[#answer + 1] = values[i] end
return answer
