-- notify: one item's notices of one relay round, in outbox order, in one atomic step on the item's node.
--
-- KEYS[1] the item's bidder set (auction:{pN}:bidders:<id>, the item's hash tag)
-- ARGV[1] notice channel prefix (a bidder's channel is prefix .. bidder)
-- then operations, three values each (built by relay/notices.py, which also builds every payload):
--   'A', bidder, ''          add a bidder of an accepted bid to the set
--   'O', bidder, payload     publish payload to that one bidder
--   'M', except, payload     publish payload to every bidder in the set but `except` ('' for none)
--   'X', ttl_ms, ''          let the set expire (the item is closed; kept a while for redeliveries)
--
-- The set is read here, after the adds that came before in the outbox, so a bidder hears of an
-- extension or a close only for an item they had bid on by then. PUBLISH is not a key access: on a
-- Redis Cluster it reaches the bidder's subscribers on every node. Reply: the number of messages sent.

local set, prefix = KEYS[1], ARGV[1]
local sent = 0
for i = 2, #ARGV, 3 do
  local op, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'A' then
    redis.call('SADD', set, a)
  elseif op == 'O' then
    redis.call('PUBLISH', prefix .. a, b)
    sent = sent + 1
  elseif op == 'M' then
    for _, bidder in ipairs(redis.call('SMEMBERS', set)) do
      if bidder ~= a then
        redis.call('PUBLISH', prefix .. bidder, b)
        sent = sent + 1
      end
    end
  elseif op == 'X' then
    redis.call('PEXPIRE', set, a)
  end
end
return sent
