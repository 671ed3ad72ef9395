-- buy_now: sell an open item that has no bid yet at its buy-now price, and close it, in one atomic step.
--
-- KEYS[1] item hash  KEYS[2] item event history  KEYS[3] partition outbox  KEYS[4] partition ends
-- KEYS[5] (optional) the call's idempotency record, in the same namespace as bids' (signature "buy")
-- ARGV[1] item id  ARGV[2] history max length  ARGV[3] live channel  ARGV[4] publish command
-- ARGV[5] the buyer  ARGV[6] idempotency ttl ms
--
-- Atomic, so of concurrent buyers exactly one wins: the first records the bid (a `bid` event at the
-- buy-now price, its outbox entry naming no previous leader) and the result (`closed`, sold to the buyer,
-- the next seq), and leaves the ends set; every later call finds the result and answers closed.
-- The platform's clock decides (Redis TIME), as for bids; the item's effective end becomes that moment,
-- so `place_bid.lua` refuses every later bid as closed without reading the result.
--
-- Reply: {"A", seq, placed_ms, bid_count, closed_seq}   sold to the caller
--        {"U"} no buy-now price, or a bid came first   {"S"} not open yet   {"C"} closed   {"N"} no such item
--        {"R"} the idempotency key was used for a bid
-- With a key, the first answer (whatever it was) is stored and every repeat gets it again, so a retried
-- buy that won hears that it won rather than "closed".

local item_key, events_key, outbox_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item_id, maxlen, channel, publish, buyer = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local idem_key = KEYS[5]
if idem_key then
  local prior = redis.call('GET', idem_key)
  if prior then
    local cut = string.find(prior, '\n', 1, true)
    if string.sub(prior, 1, cut - 1) ~= 'buy' then
      return {'R'}
    end
    return cjson.decode(string.sub(prior, cut + 1))
  end
end

local function answer(reply)
  if idem_key then
    redis.call('SET', idem_key, 'buy\n' .. cjson.encode(reply), 'PX', ARGV[6])
  end
  return reply
end

local f = redis.call('HMGET', item_key, 'st', 'et', 'bc', 'seq', 'bn', 'out', 'cur', 'inc', 'incs')
if not f[1] then
  return {'N'}
end

-- include: rfc3339

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if f[6] or now_ms >= tonumber(f[2]) then
  return answer({'C'})
end
if now_ms < tonumber(f[1]) then
  return answer({'S'})
end
if not f[5] or tonumber(f[3]) > 0 then
  return answer({'U'})
end

local price_s, price = f[5], tonumber(f[5])
local step = tonumber(f[8])
if f[9] then -- the increment ladder: the step with the greatest from <= price
  for from, inc in string.gmatch(f[9], '(%d+):(%d+)') do
    if tonumber(from) > price then break end
    step = tonumber(inc)
  end
end
local seq = tonumber(f[4]) + 1
local seq_s, closed_seq_s = string.format('%d', seq), string.format('%d', seq + 1)
local placed_s, placed_at = string.format('%d', now_ms), rfc3339(now_ms)
local bid = '{"type":"bid","item_id":"' .. item_id .. '","seq":' .. seq_s .. ',"bid_id":"' .. item_id .. '.' .. seq_s
  .. '","bidder":"' .. buyer .. '","amount":' .. price_s .. ',"currency":"' .. (f[7] or '') .. '","placed_at":"'
  .. placed_at .. '","current_price":' .. price_s .. ',"min_next_bid":' .. string.format('%d', price + step) .. '}'
local closed = '{"type":"closed","item_id":"' .. item_id .. '","seq":' .. closed_seq_s .. ',"outcome":"sold","winner":"'
  .. buyer .. '","final_price":' .. price_s .. ',"bid_count":1,"closed_at":"' .. placed_at .. '"}'
-- The effective end becomes the close: a bid of this same millisecond or later finds the auction closed.
redis.call('HSET', item_key, 'price', price_s, 'hb', buyer, 'bc', '1', 'seq', closed_seq_s, 'et', placed_s,
  'out', 'sold', 'win', buyer, 'fp', price_s, 'cat', placed_s)
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, seq_s .. '-0', 'e', bid)
redis.call('XADD', outbox_key, '*', 'e', bid, 'p', '')
redis.call(publish, channel, bid)
redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, closed_seq_s .. '-0', 'e', closed)
redis.call('XADD', outbox_key, '*', 'e', closed)
redis.call(publish, channel, closed)
redis.call('ZREM', ends_key, item_id)
return answer({'A', seq_s, placed_s, '1', closed_seq_s})
