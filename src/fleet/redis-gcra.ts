// The GCRA bucket of one cluster rate-limit key, as a Lua script Redis runs atomically.
// One call settles everything an instance has to say about the key: tokens it returns
// (unused lease), requests it admitted on credit (always charged, even past the burst:
// they were served), and a new lease of up to `want` tokens, granted only when at least
// `min` are available, so instances at the limit are not answered one token at a time.
//
// Times are microseconds of Redis' own clock (TIME), so instances with skewed clocks
// share one schedule. The key holds the TAT and expires when the bucket is full again:
// an idle key costs Redis nothing.
//
//   KEYS[1] bucket   ARGV: T_us tau_us want min debt returned
//   → { granted, wait_us (until `min` are available; 0 when granted), available after }
import { createHash } from 'node:crypto';

export const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local min = tonumber(ARGV[4])
local debt = tonumber(ARGV[5])
local returned = tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if returned > 0 then
  tat = tat - returned * T
  if tat < now then tat = now end
end
tat = tat + debt * T
local avail = math.floor((now + tau - tat) / T)
if avail < 0 then avail = 0 end
local grant = 0
if want > 0 and avail >= min then grant = math.min(want, avail) end
tat = tat + grant * T
local wait = 0
if want > 0 and grant == 0 then wait = tat + min * T - tau - now end
local ttl = math.ceil((tat - now) / 1000)
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return { grant, math.ceil(wait), avail - grant }
`;

export const GCRA_SHA1 = createHash('sha1').update(GCRA_SCRIPT).digest('hex');
