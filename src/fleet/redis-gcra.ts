// The GCRA bucket of one cluster rate-limit key, as a Lua script Redis runs atomically.
// One call settles everything an instance has to say about the key: tokens it returns
// (unused lease), requests it admitted on credit (always charged, even past the burst:
// they were served), and a new lease of `want` tokens.
//
// With at least `min` tokens available the lease is granted now (up to `want`). With
// fewer, the whole batch is *reserved*: granted now, valid from the moment its last
// token conforms (`valid_us` from now), so the instance refuses the key until then and
// spends the batch after, without asking again. Instances at the limit so queue up one
// batch each behind the bucket's TAT, every command grants a full batch, and none is
// answered "not yet" only to ask again and find another instance took the tokens first.
// A reservation further ahead than `horizon_us` (more than one batch per instance
// queued: credit charged past the limit, a batch asked by every instance at once) is
// not made: the answer is how long until it would be within the horizon (`wait_us`).
//
// Times are microseconds of Redis' own clock (TIME), so instances with skewed clocks
// share one schedule. The key holds the TAT and expires when the bucket is full again:
// an idle key costs Redis nothing.
//
//   KEYS[1] bucket   ARGV: T_us tau_us want min debt returned horizon_us
//   → { granted, wait_us (0 when granted), available after, valid_us (0: valid now) }
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
local horizon = tonumber(ARGV[7])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if returned > 0 then
  tat = tat - returned * T
  if tat < now then tat = now end
end
tat = tat + debt * T
local avail = math.floor((now + tau - tat) / T)
local grant = 0
local wait = 0
local valid = 0
if want > 0 then
  if avail >= min then
    grant = math.min(want, avail)
  else
    local at = tat + want * T - tau - now
    if at <= horizon then
      grant = want
      valid = at
    else
      wait = at - horizon
    end
  end
end
tat = tat + grant * T
local left = avail - grant
if left < 0 then left = 0 end
local ttl = math.ceil((tat - now) / 1000)
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return { grant, math.ceil(wait), left, math.ceil(valid) }
`;

export const GCRA_SHA1 = createHash('sha1').update(GCRA_SCRIPT).digest('hex');

/** The script's answer: tokens granted, µs until asking again is worth it, tokens the bucket has left, µs until the grant may be spent. */
export interface GcraReply {
  readonly granted: number;
  readonly waitUs: number;
  readonly available: number;
  readonly validUs: number;
}

export function gcraReply(raw: unknown): GcraReply {
  if (!Array.isArray(raw) || raw.length < 4) throw new Error(`unexpected GCRA script reply ${JSON.stringify(raw)}`);
  const [granted, waitUs, available, validUs] = (raw as unknown[]).map(Number) as [number, number, number, number];
  return { granted, waitUs, available, validUs };
}
