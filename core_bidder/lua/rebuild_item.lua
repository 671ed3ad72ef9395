-- rebuild_item: write an item's live state, computed from the archive, in one atomic step
-- (used by `archiver/rebuild.py`; the layout is the one create_item.lua, place_bid.lua and close_item.lua
-- keep).
--
-- KEYS[1] item hash  KEYS[2] item event history (stream, entry ids "<seq>-0")  KEYS[3] partition index
-- KEYS[4] partition ends (open items by effective end, where the closer finds due ones)
-- ARGV[1] force ("1": overwrite an item that still exists)  ARGV[2] item id  ARGV[3] created ms
-- ARGV[4] the archive's newest seq (of any event kind)
-- ARGV[5] the effective end ms of an open item, "" for a closed one (it leaves the ends set)
-- ARGV[6] n, the number of hash fields
-- ARGV[7 .. 6 + 2n] the hash, field and value in turn
-- then per history event, two values: entry id "<seq>-0", event JSON (oldest first)
--
-- Reply: "exists" (left alone: Redis may be ahead), "ahead" (the history holds a newer seq than the
-- archive; nothing changed), or "rebuilt".

local item_key, events_key, index_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local force, item_id, created_ms, seq = ARGV[1] == '1', ARGV[2], ARGV[3], tonumber(ARGV[4])
local ends_ms, fields = ARGV[5], tonumber(ARGV[6])

if redis.call('EXISTS', item_key) == 1 and not force then
  return 'exists'
end
local newest = redis.call('XREVRANGE', events_key, '+', '-', 'COUNT', 1)
local newest_seq = 0
if newest[1] then
  newest_seq = tonumber(string.match(newest[1][1], '^(%d+)'))
end
if newest_seq > seq then
  return 'ahead'
end

redis.call('DEL', item_key)
redis.call('HSET', item_key, unpack(ARGV, 7, 6 + 2 * fields))
redis.call('ZADD', index_key, created_ms, item_id)
if ends_ms == '' then
  redis.call('ZREM', ends_key, item_id)
else
  redis.call('ZADD', ends_key, ends_ms, item_id)
end
if newest_seq < seq then -- missing or older: replace it with the archive's
  redis.call('DEL', events_key)
  for i = 7 + 2 * fields, #ARGV, 2 do
    redis.call('XADD', events_key, ARGV[i], 'e', ARGV[i + 1])
  end
end
return 'rebuilt'
