-- place_bid: one atomic step for one or more bids on ONE item (group commit), applied in order.
--
-- KEYS[1] item hash   KEYS[2] item event history (stream, entry ids "<seq>-0")
-- KEYS[3] partition outbox (stream)   KEYS[4] partition ends (open items by effective end)
-- KEYS[5..] idempotency records of the bids that have keys
-- ARGV[1] item id  ARGV[2] idempotency ttl ms  ARGV[3] history max length  ARGV[4] live channel
-- ARGV[5] publish command (PUBLISH or SPUBLISH)
-- then per bid, three values: bidder, amount (decimal string, 1..10^15), idempotency key index
-- (0: no key; n: KEYS[4 + n]).
--
-- Soft close (fields scw, scx, scm): an accepted bid placed at t with end - window <= t < end moves the end
-- to min(max(end, t + extension), cap) and appends an `extended` event with the next seq, in this same step;
-- later bids of the batch see the moved end. Rejected bids never extend.
--
-- Each accepted bid's outbox entry also carries field p, the leader before it ("" for none): the relay's
-- "outbid" notice (relay/notices.py) reads it there, off the bid path.
--
-- Reply: one array per bid, in order (an idempotent replay returns the stored one):
--   {"A", seq, placed_ms, bid_count, ends_ms, item_seq}   accepted (ends_ms: the end after the bid;
--                                                 item_seq: the extended event's seq, or seq)
--   {"L", min_next_bid}                          too low
--   {"S"} not open yet   {"C"} closed   {"N"} no such item   {"R"} key reused with another amount
-- Hash fields (shared with core_bidder/store.py): sp starting price, inc increment,
-- st/et starts/ends ms, price, hb highest bidder, bc bid count, seq, cur currency (the bid event carries it).

local item_key, events_key, outbox_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item_id, ttl_ms, maxlen, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bids = (#ARGV - 5) / 3
local replies = {}

local f = redis.call('HMGET', item_key, 'sp', 'inc', 'st', 'et', 'price', 'bc', 'seq', 'cur', 'scw', 'scx', 'scm', 'hb')
if not f[1] then
  for i = 1, bids do
    replies[i] = {'N'}
  end
  return replies
end

-- include: rfc3339

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local placed_s, placed_at = string.format('%d', now_ms), rfc3339(now_ms)
local sp, inc, ends_s, currency = tonumber(f[1]), tonumber(f[2]), f[4], f[8] or ''
local ends = tonumber(ends_s)
local not_open, closed = now_ms < tonumber(f[3]), now_ms >= ends
local window, extension = f[9] and tonumber(f[9]) or nil, f[10] and tonumber(f[10]) or nil
local cap = (f[11] and f[11] ~= '') and tonumber(f[11]) or nil
local extended = false
local price = f[5] and tonumber(f[5]) or nil
local bid_count, seq = tonumber(f[6]), tonumber(f[7])
local last_bidder, last_amount = nil, nil
-- Who leads before each accepted bid: the outbox entry names them (field p) for the relay's notices.
local leader = f[12] or ''

for i = 1, bids do
  local base = 5 + (i - 1) * 3
  local bidder, amount_s, key_index = ARGV[base + 1], ARGV[base + 2], tonumber(ARGV[base + 3])
  local idem_key = key_index > 0 and KEYS[4 + key_index] or nil
  local prior = idem_key and redis.call('GET', idem_key)
  local reply
  if prior then
    local cut = string.find(prior, '\n', 1, true)
    if string.sub(prior, 1, cut - 1) == amount_s then
      reply = cjson.decode(string.sub(prior, cut + 1))
    else
      reply = {'R'}
    end
  else
    if not_open then
      reply = {'S'}
    elseif closed then
      reply = {'C'}
    else
      local amount = tonumber(amount_s)
      local min_next = price and price + inc or sp
      if amount < min_next then
        reply = {'L', string.format('%d', min_next)}
      else
        seq, bid_count, price = seq + 1, bid_count + 1, amount
        last_bidder, last_amount = bidder, amount_s
        local seq_s = string.format('%d', seq)
        local event = '{"type":"bid","item_id":"' .. item_id .. '","seq":' .. seq_s .. ',"bid_id":"' .. item_id
          .. '.' .. seq_s .. '","bidder":"' .. bidder .. '","amount":' .. amount_s .. ',"currency":"' .. currency .. '","placed_at":"'
          .. placed_at .. '","current_price":' .. amount_s .. ',"min_next_bid":'
          .. string.format('%d', amount + inc) .. '}'
        redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, seq_s .. '-0', 'e', event)
        redis.call('XADD', outbox_key, '*', 'e', event, 'p', leader)
        leader = bidder
        redis.call(publish, channel, event)
        local item_seq_s = seq_s
        if window and ends - window <= now_ms then
          local moved = math.max(ends, now_ms + extension)
          if cap then moved = math.min(moved, cap) end
          if moved > ends then
            local previous_at = rfc3339(ends)
            seq, ends, ends_s, extended = seq + 1, moved, string.format('%d', moved), true
            item_seq_s = string.format('%d', seq)
            local notice = '{"type":"extended","item_id":"' .. item_id .. '","seq":' .. item_seq_s
              .. ',"ends_at":"' .. rfc3339(moved) .. '","previous_ends_at":"' .. previous_at .. '"}'
            redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, item_seq_s .. '-0', 'e', notice)
            redis.call('XADD', outbox_key, '*', 'e', notice)
            redis.call(publish, channel, notice)
          end
        end
        reply = {'A', seq_s, placed_s, string.format('%d', bid_count), ends_s, item_seq_s}
      end
    end
    if idem_key then
      redis.call('SET', idem_key, amount_s .. '\n' .. cjson.encode(reply), 'PX', ttl_ms)
    end
  end
  replies[i] = reply
end

if last_bidder then
  redis.call('HSET', item_key, 'price', last_amount, 'hb', last_bidder,
    'bc', string.format('%d', bid_count), 'seq', string.format('%d', seq))
end
if extended then
  redis.call('HSET', item_key, 'et', ends_s)
  redis.call('ZADD', ends_key, ends_s, item_id)
end
return replies
