-- place_bid: one atomic step for one bid on one item.
--
-- KEYS[1] item hash      KEYS[2] item event history (stream, ids "<seq>-0")
-- KEYS[3] partition outbox (stream)      KEYS[4] idempotency record (optional)
-- ARGV[1] item id  ARGV[2] bidder  ARGV[3] amount (decimal string, 1..2^53)
-- ARGV[4] idempotency ttl ms  ARGV[5] history max length  ARGV[6] live channel
-- ARGV[7] publish command (PUBLISH or SPUBLISH)
--
-- Reply (array of strings; also what an idempotent replay returns):
--   {"A", seq, placed_ms, bid_count, ends_ms}   accepted
--   {"L", min_next_bid}                          too low
--   {"S"} not open yet   {"C"} closed   {"N"} no such item   {"R"} key reused, other amount
-- Hash fields (shared with core_bidder/redis_store.py): sp starting price, inc increment,
-- st/et starts/ends ms, price, hb highest bidder, bc bid count, seq.

local item_key, events_key, outbox_key, idem_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item_id, bidder, amount_s = ARGV[1], ARGV[2], ARGV[3]

if idem_key then
  local prior = redis.call('GET', idem_key)
  if prior then
    local cut = string.find(prior, '\n', 1, true)
    if string.sub(prior, 1, cut - 1) ~= amount_s then
      return {'R'}
    end
    return cjson.decode(string.sub(prior, cut + 1))
  end
end

local f = redis.call('HMGET', item_key, 'sp', 'inc', 'st', 'et', 'price', 'bc', 'seq')
if not f[1] then
  return {'N'}
end

local function remember(reply)
  if idem_key then
    redis.call('SET', idem_key, amount_s .. '\n' .. cjson.encode(reply), 'PX', ARGV[4])
  end
  return reply
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now_ms < tonumber(f[3]) then
  return remember({'S'})
end
if now_ms >= tonumber(f[4]) then
  return remember({'C'})
end

local amount = tonumber(amount_s)
local min_next
if f[5] then
  min_next = tonumber(f[5]) + tonumber(f[2])
else
  min_next = tonumber(f[1])
end
if amount < min_next then
  return remember({'L', string.format('%d', min_next)})
end

local seq = string.format('%d', tonumber(f[7]) + 1)
local bid_count = string.format('%d', tonumber(f[6]) + 1)
local next_s = string.format('%d', amount + tonumber(f[2]))

local function two(n) return string.format('%02d', n) end
-- RFC 3339 UTC with milliseconds from Unix ms (civil-from-days, Howard Hinnant's algorithm).
local function rfc3339(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-', y) .. two(m) .. '-' .. two(d) .. 'T' .. two(math.floor(rem / 3600)) .. ':'
    .. two(math.floor(rem % 3600 / 60)) .. ':' .. two(rem % 60) .. '.' .. string.format('%03d', ms % 1000) .. 'Z'
end

local bid_id = item_id .. '.' .. seq
local event = '{"type":"bid","item_id":"' .. item_id .. '","seq":' .. seq .. ',"bid_id":"' .. bid_id
  .. '","bidder":"' .. bidder .. '","amount":' .. amount_s .. ',"placed_at":"' .. rfc3339(now_ms)
  .. '","current_price":' .. amount_s .. ',"min_next_bid":' .. next_s .. '}'

redis.call('HSET', item_key, 'price', amount_s, 'hb', bidder, 'bc', bid_count, 'seq', seq)
redis.call('XADD', events_key, 'MAXLEN', '~', ARGV[5], seq .. '-0', 'e', event)
redis.call('XADD', outbox_key, '*', 'e', event)
redis.call(ARGV[7], ARGV[6], event)
return remember({'A', seq, string.format('%d', now_ms), bid_count, f[4]})
