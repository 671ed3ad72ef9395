-- Shared by the scripts that name `-- include: rfc3339` (core_bidder/scripts.py splices it in there).
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
