-- place_bid: one atomic step for one or more bids on ONE item (group commit), applied in order.
--
-- KEYS[1] item hash   KEYS[2] item event history (stream, entry ids "<seq>-0")
-- KEYS[3] partition outbox (stream)   KEYS[4] partition ends (open items by effective end)
-- KEYS[5..] idempotency records of the bids that have keys
-- ARGV[1] item id  ARGV[2] idempotency ttl ms  ARGV[3] history max length  ARGV[4] live channel
-- ARGV[5] publish command (PUBLISH or SPUBLISH)
-- then per bid, three values: bidder, amount, idempotency key index (0: no key; n: KEYS[4 + n]).
-- The amount is a decimal string (1..10^15) for a plain bid, "<amount>/<max>" for a bid with a maximum
-- ("/<max>" without an amount); it is also what an idempotency record compares.
--
-- Bid kinds (auction_contract/bid_rules.py is the reference model, step for step): the hidden field lm
-- holds the leader's maximum while it is above the price. A plain bid on an item without lm takes the
-- plain path, unchanged since before proxy bids (tonumber() of a bid with a maximum is nil); anything
-- else takes the proxy path, which may place a bid for the defending leader ("proxy":true). Field incs
-- holds the increment ladder ("from:inc,..."; absent: inc at every price).
--
-- Soft close (fields scw, scx, scm): an accepted bid placed at t with end - window <= t < end moves the end
-- to min(max(end, t + extension), cap) and appends an `extended` event with the next seq, in this same step;
-- later bids of the batch see the moved end. Rejected bids never extend.
--
-- Each accepted bid's outbox entry also carries field p, the leader before it ("" for none): the relay's
-- "outbid" notice (relay/notices.py) reads it there, off the bid path ("" too for a named bid that the
-- leader's maximum answers in the same step: that leader never lost the lead). AUDIT ONLY: on the proxy path, field
-- m is the maximum the event's bidder (the leader right after it) leads with, when above its amount; and
-- a leader raising their own maximum without moving the price adds a `max_raised` entry to the outbox
-- alone. The relay carries both to the archive, which keeps them for audit and the rebuild; neither is
-- in the history, the live channel or any event JSON.
--
-- Reply: one array per bid, in order (an idempotent replay returns the stored one):
--   {"A", seq, placed_ms, bid_count, ends_ms, item_seq}   accepted (ends_ms: the end after the bid;
--                                                 item_seq: the extended event's seq, or seq)
--   {"A", seq, placed_ms, bid_count, ends_ms, item_seq, price, leader, amount}   accepted on the proxy
--         path (seq and amount: the bid's own event's, or the item's seq and price when it made none)
--   {"L", min_next_bid}                          too low
--   {"S"} not open yet   {"C"} closed   {"N"} no such item   {"R"} key reused with another amount
-- Hash fields (shared with core_bidder/store.py): sp starting price, inc increment,
-- st/et starts/ends ms, price, hb highest bidder, bc bid count, seq, cur currency (the bid event carries it),
-- rp the reserve (read on the proxy path only).

local item_key, events_key, outbox_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local item_id, ttl_ms, maxlen, channel, publish = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bids = (#ARGV - 5) / 3
local replies = {}

local f = redis.call('HMGET', item_key, 'sp', 'inc', 'st', 'et', 'price', 'bc', 'seq', 'cur', 'scw', 'scx', 'scm',
  'hb', 'lm', 'incs')
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
local price, price_s = f[5] and tonumber(f[5]) or nil, f[5]
local bid_count, seq = tonumber(f[6]), tonumber(f[7])
local dirty = false
-- Who leads before each accepted bid: the outbox entry names them (field p) for the relay's notices.
local leader = f[12] or ''
local lm, lm_dirty = f[13] and tonumber(f[13]) or nil, false

local ladder = nil
if f[14] then
  ladder = {}
  for from, step in string.gmatch(f[14], '(%d+):(%d+)') do
    ladder[#ladder + 1] = tonumber(from)
    ladder[#ladder + 1] = tonumber(step)
  end
end
-- The increment at price p: the ladder's step with the greatest from <= p.
local function inc_at(p)
  if not ladder then return inc end
  local found = ladder[2]
  for j = 1, #ladder, 2 do
    if ladder[j] > p then break end
    found = ladder[j + 1]
  end
  return found
end

-- One bid event (history, outbox naming the leader before it, live channel); the bidder then leads, with
-- maximum top (nil: the amount) that only the outbox entry names.
local function emit(bidder, amount, amount_s, proxy, top)
  seq, bid_count, price, price_s, dirty = seq + 1, bid_count + 1, amount, amount_s, true
  local seq_s = string.format('%d', seq)
  local event = '{"type":"bid","item_id":"' .. item_id .. '","seq":' .. seq_s .. ',"bid_id":"' .. item_id
    .. '.' .. seq_s .. '","bidder":"' .. bidder .. '","amount":' .. amount_s .. ',"currency":"' .. currency .. '","placed_at":"'
    .. placed_at .. '","current_price":' .. amount_s .. ',"min_next_bid":'
    .. string.format('%d', amount + inc_at(amount)) .. (proxy and ',"proxy":true}' or '}')
  redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, seq_s .. '-0', 'e', event)
  if top and top > amount then
    redis.call('XADD', outbox_key, '*', 'e', event, 'p', leader, 'm', string.format('%d', top))
  else
    redis.call('XADD', outbox_key, '*', 'e', event, 'p', leader)
  end
  leader = bidder
  redis.call(publish, channel, event)
  return seq_s
end

-- Soft close after a bid's events: the end moved and its `extended` event; the item's seq after both.
local function extend()
  if window and ends - window <= now_ms then
    local moved = math.max(ends, now_ms + extension)
    if cap then moved = math.min(moved, cap) end
    if moved > ends then
      local previous_at = rfc3339(ends)
      seq, ends, ends_s, extended = seq + 1, moved, string.format('%d', moved), true
      local item_seq_s = string.format('%d', seq)
      local notice = '{"type":"extended","item_id":"' .. item_id .. '","seq":' .. item_seq_s
        .. ',"ends_at":"' .. rfc3339(moved) .. '","previous_ends_at":"' .. previous_at .. '"}'
      redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, item_seq_s .. '-0', 'e', notice)
      redis.call('XADD', outbox_key, '*', 'e', notice)
      redis.call(publish, channel, notice)
    end
  end
  return string.format('%d', seq)
end

local reserve_read, reserve = false, nil
-- The price raised to the reserve as soon as the leader's maximum (top) covers it.
local function with_reserve(p, top)
  if not reserve_read then
    local rp = redis.call('HGET', item_key, 'rp')
    reserve, reserve_read = rp and tonumber(rp) or nil, true
  end
  if reserve and p < reserve and reserve <= top then return reserve end
  return p
end

-- The leader's maximum, kept only while above the price.
local function set_top(top)
  if top > price then lm = top else lm = nil end
  lm_dirty = true
end

-- `bidder` leads at price p with maximum top: one event, a proxy one unless they named that amount.
local function settle(bidder, top, p, amount)
  local p_s = string.format('%d', p)
  local seq_s = emit(bidder, p, p_s, p ~= amount, top)
  set_top(top)
  return seq_s, p_s
end

-- A bid with a maximum, or any bid while the leader has one (auction_contract.bid_rules.place).
local function proxy_bid(bidder, amount, top)
  local current_top = lm or price or 0
  local needed = price and price + inc_at(price) or sp
  if leader == bidder and not amount then needed = math.max(needed, current_top + 1) end
  if (amount or top) < needed then
    return {'L', string.format('%d', needed)}
  end
  local before = seq
  local own, own_amount = nil, nil
  if leader == '' then
    own, own_amount = settle(bidder, top, with_reserve(amount or sp, top), amount)
  elseif leader == bidder then
    if not amount then
      local p = with_reserve(price, top)
      if p == price then
        set_top(top)
        -- No event says so: the archive hears of the raise from the outbox alone.
        redis.call('XADD', outbox_key, '*', 'e', '{"type":"max_raised","item_id":"' .. item_id .. '","seq":'
          .. string.format('%d', seq) .. ',"bidder":"' .. bidder .. '","max_amount":' .. string.format('%d', top)
          .. ',"raised_at":"' .. placed_at .. '"}')
      else
        own, own_amount = settle(bidder, top, p, nil)
      end
    else
      local t = math.max(top, current_top)
      own, own_amount = settle(bidder, t, with_reserve(amount, t), amount)
    end
  elseif top > current_top then
    local p = math.max(amount or 0, math.min(top, current_top + inc_at(current_top)))
    own, own_amount = settle(bidder, top, with_reserve(p, top), amount)
  else
    local defender = leader
    if amount then
      own_amount = string.format('%d', amount)
      -- The defender's maximum answers in this same step, so this event outbids nobody: its outbox
      -- entry names no previous leader (no "outbid" notice to a leader who never lost the lead).
      leader = ''
      own = emit(bidder, amount, own_amount, false, top)
    end
    settle(defender, current_top, with_reserve(math.min(current_top, top + inc_at(top)), current_top), nil)
  end
  local seq_s = own or string.format('%d', seq)
  local item_seq_s = seq > before and extend() or seq_s
  return {'A', seq_s, placed_s, string.format('%d', bid_count), ends_s, item_seq_s, price_s, leader,
    own_amount or price_s}
end

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
      if amount and not lm then
        local min_next = price and price + inc_at(price) or sp
        if amount < min_next then
          reply = {'L', string.format('%d', min_next)}
        else
          local seq_s = emit(bidder, amount, amount_s, false)
          local item_seq_s = extend() -- first: it may move ends_s
          reply = {'A', seq_s, placed_s, string.format('%d', bid_count), ends_s, item_seq_s}
        end
      else
        local named, top_s = string.match(amount_s, '^(%d*)/(%d+)$')
        if top_s then
          reply = proxy_bid(bidder, named ~= '' and tonumber(named) or nil, tonumber(top_s))
        else
          reply = proxy_bid(bidder, amount, amount)
        end
      end
    end
    if idem_key then
      redis.call('SET', idem_key, amount_s .. '\n' .. cjson.encode(reply), 'PX', ttl_ms)
    end
  end
  replies[i] = reply
end

if dirty then
  redis.call('HSET', item_key, 'price', price_s, 'hb', leader,
    'bc', string.format('%d', bid_count), 'seq', string.format('%d', seq))
end
if lm_dirty then
  if lm then
    redis.call('HSET', item_key, 'lm', string.format('%d', lm))
  else
    redis.call('HDEL', item_key, 'lm')
  end
end
if extended then
  redis.call('HSET', item_key, 'et', ends_s)
  redis.call('ZADD', ends_key, ends_s, item_id)
end
return replies
