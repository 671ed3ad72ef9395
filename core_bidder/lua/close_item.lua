-- close_item: close one due auction exactly once, in one atomic step (the closer calls it for due items).
--
-- KEYS[1] item hash  KEYS[2] item event history  KEYS[3] partition outbox  KEYS[4] partition ends
-- ARGV[1] item id  ARGV[2] history max length  ARGV[3] live channel  ARGV[4] publish command
--
-- The platform's clock decides (Redis TIME). Nothing happens unless the item exists, has no result yet
-- and its effective end has passed; then the result is recorded (sold to the highest bidder at the
-- current price when there is a bid and no reserve or the price meets it; otherwise no sale), the
-- `closed` event gets the next seq (the item's last event) and goes to the history, the outbox and the
-- live channel, and the item leaves the ends set. So several closers (bidder replicas) may race:
-- one closes, the others find the result and only tidy the ends set.
--
-- Reply: {"C", seq, closed_ms} closed now   {"D"} already closed   {"E", ends_ms} not due (end moved)
--        {"N"} no such item

local item_key, events_key, outbox_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item_id, maxlen, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local f = redis.call('HMGET', item_key, 'et', 'price', 'hb', 'bc', 'seq', 'rp', 'out')
if not f[1] then
  redis.call('ZREM', ends_key, item_id)
  return {'N'}
end
if f[7] then
  redis.call('ZREM', ends_key, item_id)
  return {'D'}
end

-- include: rfc3339

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now_ms < tonumber(f[1]) then
  redis.call('ZADD', ends_key, f[1], item_id)
  return {'E', f[1]}
end

local price, winner, bid_count, seq, reserve = f[2], f[3], f[4] or '0', tonumber(f[5]) + 1, f[6]
-- HMGET answers false (not nil) for a missing field.
local sold = price and (not reserve or tonumber(price) >= tonumber(reserve))
local seq_s, closed_s, closed_at = string.format('%d', seq), string.format('%d', now_ms), rfc3339(now_ms)
local event
if sold then
  redis.call('HSET', item_key, 'out', 'sold', 'win', winner, 'fp', price, 'cat', closed_s, 'seq', seq_s)
  event = '{"type":"closed","item_id":"' .. item_id .. '","seq":' .. seq_s .. ',"outcome":"sold","winner":"'
    .. winner .. '","final_price":' .. price .. ',"bid_count":' .. bid_count .. ',"closed_at":"' .. closed_at .. '"}'
else
  redis.call('HSET', item_key, 'out', 'no_sale', 'cat', closed_s, 'seq', seq_s)
  event = '{"type":"closed","item_id":"' .. item_id .. '","seq":' .. seq_s .. ',"outcome":"no_sale","winner":null,'
    .. '"final_price":null,"bid_count":' .. bid_count .. ',"closed_at":"' .. closed_at .. '"}'
end
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, seq_s .. '-0', 'e', event)
redis.call('XADD', outbox_key, '*', 'e', event)
redis.call(publish, channel, event)
redis.call('ZREM', ends_key, item_id)
return {'C', seq_s, closed_s}
