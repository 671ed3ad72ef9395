-- create_item: record a new item, its index and due-time entries and its ItemCreated event (seq 1) atomically.
--
-- KEYS[1] item hash  KEYS[2] item event history  KEYS[3] partition outbox  KEYS[4] partition index
-- KEYS[5] partition ends (open items by effective end, for the closer)
-- ARGV[1] item id  ARGV[2] title  ARGV[3] description  ARGV[4] currency  ARGV[5] starting price
-- ARGV[6] min increment  ARGV[7] starts ms  ARGV[8] ends ms  ARGV[9] created ms
-- ARGV[10] history max length  ARGV[11] live channel  ARGV[12] publish command
-- ARGV[13] the ItemCreated event for viewers (history, live channel), serialized once by the caller
-- ARGV[14] the same event for the outbox (the archive), which also carries the hidden reserve
-- ARGV[15] soft close window ms, ARGV[16] extension ms, ARGV[17] cap ms ("" none): all "" for a hard end
-- ARGV[18] reserve price ("" none)
-- ARGV[19] increment ladder "from:increment,..." ("" none: ARGV[6] at every price)
-- ARGV[20] buy-now price ("" none)
-- Reply: 1 when created, 0 when the id is already taken (nothing changed).

local item_key, events_key, outbox_key, index_key, ends_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('EXISTS', item_key) == 1 then
  return 0
end
redis.call('HSET', item_key, 'title', ARGV[2], 'desc', ARGV[3], 'cur', ARGV[4], 'sp', ARGV[5],
  'inc', ARGV[6], 'st', ARGV[7], 'et', ARGV[8], 'ct', ARGV[9], 'bc', '0', 'seq', '1')
if ARGV[15] ~= '' then
  redis.call('HSET', item_key, 'scw', ARGV[15], 'scx', ARGV[16], 'scm', ARGV[17])
end
if ARGV[18] ~= '' then
  redis.call('HSET', item_key, 'rp', ARGV[18])
end
if ARGV[19] ~= '' then
  redis.call('HSET', item_key, 'incs', ARGV[19])
end
if ARGV[20] ~= '' then
  redis.call('HSET', item_key, 'bn', ARGV[20])
end
redis.call('ZADD', index_key, ARGV[9], ARGV[1])
redis.call('ZADD', ends_key, ARGV[8], ARGV[1])
redis.call('XADD', events_key, 'MAXLEN', '~', ARGV[10], '1-0', 'e', ARGV[13])
redis.call('XADD', outbox_key, '*', 'e', ARGV[14])
redis.call(ARGV[12], ARGV[11], ARGV[13])
return 1
