// The whole shared-memory layout, in one place (docs/architecture.md §2). Every slot is a named
// constant; typed views in this folder wrap the buffer. Sizes are fixed at start from
// config limits; a reload that needs more room is refused with TG_ERR_SHM_CAPACITY.
//
// Units: area offsets are 8-byte words (Float64Array / BigInt64Array views share the
// buffer). Inside the endpoint area, fields are 32-bit (Int32Array index = word × 2):
// Atomics.add on an Int32Array returns a small integer, where the BigInt64 variant
// would allocate a BigInt on every request.
// A "slice" is padded to a multiple of 8 words (64 bytes) so two writers never
// share a cache line.

/** Bumped whenever any offset below changes: a worker built for another layout refuses the buffer. */
export const kLayoutVersion = 11;
export const kMagic = 0x7469_6465; // "tide"

export const kWordsPerCacheLine = 8;

/** Header, two cache lines: read by everyone, written by the primary once at creation (except the generation). */
export const kHeaderMagicField = 0;
export const kHeaderVersionField = 1;
export const kHeaderGenerationField = 2; // config generation the tables describe
export const kHeaderWorkerSlotsField = 3; // capacity of the worker counter area
// Capacities are stored so a worker can attach knowing only the buffer (the primary's
// config decides them; a worker never re-derives them).
export const kHeaderMaxUpstreamsField = 4;
export const kHeaderMaxEndpointsField = 5;
export const kHeaderLimiterSlotsField = 6;
export const kHeaderLimiterPoliciesField = 7;
/** [primary] the gateway's shed level, 0–3 (src/controllers/shed-level.ts): f64, one plain store per change */
export const kHeaderShedLevelField = 8;
/** ban table slots (config `capacity.banKeys`, a power of two) */
export const kHeaderBanSlotsField = 9;
/** Date.now() when the buffer was made: ban times are 100 ms ticks since then (src/shm/ban-table.ts) */
export const kHeaderBanEpochField = 10;
/** bytes of the shared dictionary region (config `shared`, src/shm/shared-dict.ts), a multiple of 64 */
export const kHeaderSharedDictBytesField = 11;
export const kHeaderWordCount = 2 * kWordsPerCacheLine;

/**
 * Per-worker counter slice. Single writer (that worker), plain Float64 stores: an
 * aligned 8-byte store is not torn on the platforms we ship (x86-64, arm64), and the
 * primary only sums them, so Atomics would buy nothing but cost on every request.
 */
export const kWorkerRequestsField = 0;
export const kWorkerStatus1xxField = 1;
export const kWorkerStatus2xxField = 2;
export const kWorkerStatus3xxField = 3;
export const kWorkerStatus4xxField = 4;
export const kWorkerStatus5xxField = 5;
export const kWorkerUpstreamErrorsField = 6;
export const kWorkerBytesInField = 7; // request bytes read from clients (bodies)
export const kWorkerBytesOutField = 8; // response body bytes written to clients
export const kWorkerInFlightField = 9; // requests started and not yet finished
export const kWorkerClientAbortsField = 10;
export const kWorkerRetriesField = 11;
// WebSocket relays (src/worker/websocket-relay.ts). "in": client → upstream, "out": upstream → client.
export const kWorkerWsOpenField = 12; // relays open now (gauge)
export const kWorkerWsConnectionsField = 13; // relays opened in total
export const kWorkerWsMessagesInField = 14;
export const kWorkerWsMessagesOutField = 15;
export const kWorkerWsBytesInField = 16; // message payload bytes
export const kWorkerWsBytesOutField = 17;
/** requests refused 503 TG_ERR_LIMIT_CONNECTIONS (limits.maxConnections) */
export const kWorkerConnectionsRefusedField = 18;
/** requests refused 503 TG_ERR_SHED by the shed level (gateway load), this index + a Priority (19–22) */
export const kWorkerShedLoadField = 19;
/** requests a plugin failed (threw) in, answered 500 TG_ERR_PLUGIN; log-phase failures counted too */
export const kWorkerPluginErrorsField = 23;
export const kWorkerFieldCount = 24;
export const kWorkerSliceWords = Math.ceil(kWorkerFieldCount / kWordsPerCacheLine) * kWordsPerCacheLine;

// ---- endpoint tables (Int32 fields) -------------------------------------------------
//
// Per upstream: one header (2 cache lines) then `maxEndpoints` rows (2 cache lines each).
// Fields marked [seq] are written only by the primary, between two increments of the
// upstream's seqlock word; readers copy them and retry when the word was odd or moved.
// Fields marked [rmw] are counters every worker updates with Atomics read-modify-write.

/** [seq] seqlock: odd while the primary writes this upstream's [seq] fields. */
export const kUpstreamSeqField = 0;
/** [seq] rows in use (high-water mark; free rows below it have address id 0) */
export const kUpstreamRowsField = 1;
/** [seq] 1 while fewer than panicThreshold of the endpoints are healthy: balancers spread over all (Envoy panic mode) */
export const kUpstreamPanicField = 2;
/** [rmw] picks made in panic mode, for the primary's log and metrics */
export const kUpstreamPanicPicksField = 3;
/** [seq] healthy endpoints (state Healthy, weight > 0) */
export const kUpstreamHealthyField = 4;
/** [rmw] picks that found no usable endpoint */
export const kUpstreamNoEndpointField = 5;
/** [seq] byte length of the upstream's name (bytes at kUpstreamNameInt32Offset) */
export const kUpstreamNameLengthField = 6;
/** [seq] 1 while a config generation uses this upstream slot */
export const kUpstreamInUseField = 7;
export const kUpstreamFieldCount = 8;
export const kUpstreamNameInt32Offset = 16; // 64 bytes of UTF-8 name in the second cache line
export const kUpstreamNameMaxBytes = 64;
export const kUpstreamHeaderWords = 2 * kWordsPerCacheLine;

/** [seq] address id, unique per upstream and never reused; 0 = free row */
export const kEndpointAddressField = 0;
/** [seq] an EndpointState */
export const kEndpointStateField = 1;
/** [seq] configured weight (1..1_000_000) */
export const kEndpointWeightField = 2;
/** [seq] weight balancers use: configured weight, ramped during slow start; 0 = not pickable */
export const kEndpointEffectiveWeightField = 3;
/** [rmw] requests sent to this endpoint and not finished (all workers; each worker's share is in its ledger) */
export const kEndpointInFlightField = 4;
/** [rmw] peak-EWMA of response-head latency, microseconds (CAS by workers, see endpoint-table.ts) */
export const kEndpointEwmaField = 5;
/** [rmw] 5xx responses since the last non-5xx response: passive health input (the primary resets it on ejection) */
export const kEndpointConsecutive5xxField = 6;
/** [seq] times the primary ejected this endpoint */
export const kEndpointEjectionsField = 7;
/** [rmw] failures in total */
export const kEndpointFailuresField = 8;
/** [rmw] requests sent in total (wraps at 2^32; read as unsigned) */
export const kEndpointRequestsField = 9;
/** [seq] byte length of the "host:port" address (bytes at kEndpointAddressInt32Offset) */
export const kEndpointAddressLengthField = 10;
/** [rmw] requests that got no response at all (connect error, reset, timeout) since the last response */
export const kEndpointConsecutiveConnectFailuresField = 11;
export const kEndpointFieldCount = 12;
export const kEndpointAddressInt32Offset = 16; // 64 bytes of "host:port" in the row's second cache line
export const kEndpointAddressMaxBytes = 64;
export const kEndpointRowWords = 2 * kWordsPerCacheLine;

export const enum EndpointState {
  /** free row (never picked) */
  Free = 0,
  Healthy = 1,
  /** taken out by health checks or outlier detection; picked only in panic mode */
  Ejected = 2,
  /** leaving: finishes what is in flight, takes nothing new */
  Draining = 3,
}

export const endpointStateNames: readonly string[] = ['free', 'healthy', 'ejected', 'draining'];

// ---- limiter (GCRA) ------------------------------------------------------------------
//
// Policy rows (one cache line): Float64 [seq-less] fields the primary writes with plain
// stores (one aligned 8-byte store each; a reader seeing a new rate with an old burst
// for one request is harmless), then Int32 counters workers add to.
export const kLimiterPolicyRateField = 0; // f64: events per second
export const kLimiterPolicyBurstField = 1; // f64: bucket capacity (requests admitted at once)
export const kLimiterPolicyMultiplierField = 2; // f64: adaptive factor on the rate (1 = as configured)
export const kLimiterPolicyInUseField = 3; // f64: 1 while some route's policy uses this row
export const kLimiterPolicyAllowedInt32 = 8; // i32 [rmw] (word 4)
export const kLimiterPolicyDeniedInt32 = 9; // i32 [rmw]
export const kLimiterPolicyOverflowInt32 = 10; // i32 [rmw]: table full, request admitted unmetered
export const kLimiterPolicyChangedAtField = 6; // f64: process.hrtime ns when the primary last wrote rate/burst/multiplier
export const kLimiterPolicyWords = kWordsPerCacheLine;

/** Bucket slots: BigInt64 [theoretical arrival time ns, key tag]; tag 0 = empty. */
export const kLimiterSlotTatField = 0;
export const kLimiterSlotTagField = 1;
export const kLimiterSlotWords = 2;
/** longest probe sequence; past it the table is considered full for that key */
export const kLimiterMaxProbe = 16;

// ---- per-worker ledgers (Int32) ----------------------------------------------------------
//
// One writer each: that worker, with plain stores (nobody else writes while it lives).
// Per worker, per upstream slot: a header line, then the worker's share of each
// endpoint row's in-flight count. The shared [rmw] in-flight count is what balancers
// read (one load); the ledger is what makes it reconcilable: when a worker thread
// ends, whatever it still held is subtracted by the primary, so a crash cannot leave
// counts behind that keep draining rows from ever being freed.

/** requests this worker holds waiting for one of the upstream's connections (all generations) */
export const kLedgerPendingInt32 = 0;
/** requests this worker refused 503 TG_ERR_UPSTREAM_OVERLOADED (pool.maxPending); wraps at 2^32 */
export const kLedgerOverloadedInt32 = 1;
// Outcome counters the adaptive controllers read (src/controllers), per upstream attempt
// that got a verdict; all wrap at 2^32 and are read as deltas (>>> 0).
export const kLedgerAttemptsInt32 = 2;
/** 5xx, or no response (connect error, reset, timeout) */
export const kLedgerFailuresInt32 = 3;
/** response head later than breaker.slowCall.duration */
export const kLedgerSlowInt32 = 4;
export const kLedgerProbeSuccessesInt32 = 5;
export const kLedgerProbeFailuresInt32 = 6;
/** requests answered 503 TG_ERR_CIRCUIT_OPEN, or by the fallback */
export const kLedgerCircuitOpenInt32 = 7;
export const kLedgerFallbackInt32 = 8;
/** requests answered 503 TG_ERR_SHED (concurrency limit) */
export const kLedgerShedInt32 = 9;
/** requests this worker counts in the upstream's shared in-flight word (kControlInFlightInt32) */
export const kLedgerAdmittedInt32 = 10;
/** of kLedgerShedInt32, by route priority: this index + a Priority (four words, 11–14) */
export const kLedgerShedByPriorityInt32 = 11;
/** response-head latency histogram: 4 buckets per power of two of microseconds (see latencyBucket) */
export const kLedgerLatencyInt32 = 16;
export const kLatencyBuckets = 96;
// pool.pipelining (src/worker/upstream/h1-pool.ts), all wrap at 2^32
/** requests written behind another on one upstream connection */
export const kLedgerPipelinedInt32 = kLedgerLatencyInt32 + kLatencyBuckets; // 112
/** request heads that went out in one write with at least one other */
export const kLedgerPipelineBatchedInt32 = 113;
/** times one of the worker's pools for the upstream stopped pipelining after an anomaly */
export const kLedgerPipelineFallbacksInt32 = 114;
/** the last anomaly's PipelineAnomaly code (0: none) */
export const kLedgerPipelineAnomalyInt32 = 115;
/** Unix seconds until which the last pool that stopped pipelining sends one request at a time */
export const kLedgerPipelineOffUntilInt32 = 116;
export const kLedgerHeaderInt32 = 128; // 8 cache lines

/** how long a pool sends one request at a time after a pipelining anomaly */
export const PIPELINE_FALLBACK_MS = 60_000;

/** What made a pool stop pipelining (kLedgerPipelineAnomalyInt32; names: pipelineAnomalyNames). */
export const PipelineAnomaly = {
  /** the response could not be parsed (bytes after it that no request expects, a 101, …) */
  Protocol: 1,
  /** the upstream closed the connection with pipelined requests outstanding */
  Closed: 2,
  /** an HTTP/1.0 or close-delimited response to a request with others behind it */
  Unframed: 3,
  /** bytes arrived with no request outstanding */
  Unsolicited: 4,
} as const;
export const pipelineAnomalyNames: readonly string[] = ['none', 'protocol-error', 'closed-with-requests-outstanding', 'unframed-response', 'response-with-nothing-outstanding'];
/** ledger Int32 stride of one upstream: header plus one word per endpoint row, whole cache lines */
export function ledgerUpstreamInt32(maxEndpoints: number): number {
  return kLedgerHeaderInt32 + Math.ceil(maxEndpoints / 16) * 16;
}

/** Latency bucket of `us` microseconds: 2 mantissa bits per octave (≤ 19 % wide), up to 2^24 µs. */
export function latencyBucket(us: number): number {
  if (us < 4) return us < 0 ? 0 : us | 0;
  const o = 31 - Math.clz32(us);
  const b = (o << 2) + ((us >>> (o - 2)) & 3) - 4;
  return b < kLatencyBuckets ? b : kLatencyBuckets - 1;
}

/** Lower bound in microseconds of latency bucket `b`. */
export function latencyBucketFloor(b: number): number {
  if (b < 4) return b;
  const o = (b + 4) >> 2;
  return (4 + ((b + 4) & 3)) * 2 ** (o - 2);
}

// ---- control words (Int32) -------------------------------------------------------------
//
// Per upstream slot, two cache lines. The first the primary alone writes (src/controllers)
// and every request reads with one load; the second holds the words workers change with
// Atomics read-modify-write, kept off the first line so their writes do not evict it.

/** [primary] the breaker state in the low 2 bits (a BreakerState), the concurrency limit above (0 = none) */
export const kControlWordInt32 = 0;
/** [primary] f64 at Int32 index 2 (word 1): Date.now() ms at which an open breaker turns half-open */
export const kControlOpenUntilF64Word = 1;
/** [rmw] half-open probe permits left: workers take one with compareExchange */
export const kControlProbePermitsInt32 = 16;
/** [rmw] requests admitted to the upstream and not finished, all workers (only for upstreams with a concurrency limit) */
export const kControlInFlightInt32 = 17;
export const kControlUpstreamInt32 = 32;

export const enum BreakerState {
  Closed = 0,
  Open = 1,
  HalfOpen = 2,
}
export const breakerStateNames: readonly string[] = ['closed', 'open', 'half-open'];

/** A route's priority, most important first (the order shedding spares them in). */
export const enum Priority {
  Critical = 0,
  High = 1,
  Normal = 2,
  Low = 3,
}
export const priorityNames = ['critical', 'high', 'normal', 'low'] as const;
export type PriorityName = (typeof priorityNames)[number];

// ---- cluster rate limits (leases of a Redis bucket, src/fleet/) -------------------------
//
// A `rate-limit` policy with `scope: cluster` keeps its bucket in Redis; the primary
// leases tokens from it per hot key into these words, and workers spend them with
// Atomics, never waiting on Redis. Per limiter policy row one cache line, per limiter
// bucket slot three words, at the same index as the slot in the GCRA table.

/** [primary] f64: how workers admit under this row (a ClusterMode; 0 = not a cluster policy) */
export const kClusterPolicyModeField = 0;
/** [primary] f64: this instance's share of the rate (rate / redis.instances): local mode and the bridge */
export const kClusterPolicyShareRateField = 1;
/** [primary] f64: this instance's share of the burst, for local mode */
export const kClusterPolicyShareBurstField = 2;
/** [primary] f64: requests a key may take on credit while its lease is empty (charged to Redis later) */
export const kClusterPolicyBridgeBurstField = 3;
/** [rmw] i32 counters (word 4 on): requests admitted from a lease, on credit, by the local share, failing open, refused failing closed */
export const kClusterPolicyLeasedInt32 = 8;
export const kClusterPolicyBridgedInt32 = 9;
export const kClusterPolicyLocalInt32 = 10;
export const kClusterPolicyFailOpenInt32 = 11;
export const kClusterPolicyFailClosedInt32 = 12;
/** [primary] f64 (word 7): ns past a key's deny-until after which, still without an answer from the primary, credit resumes */
export const kClusterPolicyGraceField = 7;
export const kClusterPolicyWords = kWordsPerCacheLine;

/** [rmw] i32: lease tokens left; the primary adds a batch, workers take one each with compareExchange */
export const kLeaseTokensInt32 = 0;
/** [rmw] i32: requests admitted for this key since the primary last read it (it exchanges it to 0) */
export const kLeaseUsedInt32 = 1;
/** [rmw] i32: requests admitted on credit (bridge) not yet charged to Redis */
export const kLeaseDebtInt32 = 2;
/** [rmw] i32: requests refused for want of a lease since the primary last read it (demand it sizes batches by) */
export const kLeaseRefusedInt32 = 3;
/** [primary] f64 (word 2): process.hrtime ns before which the key is refused (Redis had no tokens) */
export const kLeaseDenyUntilField = 2;
export const kLeaseSlotWords = 3;

export const enum ClusterMode {
  /** a per-instance policy: the GCRA table alone */
  Off = 0,
  /** Redis reachable: spend the lease, bridge on credit, refuse while denied */
  Lease = 1,
  /** Redis unreachable, redis.onFailure allow: admit */
  Allow = 2,
  /** Redis unreachable, redis.onFailure deny: refuse with 503 */
  Deny = 3,
  /** Redis unreachable, redis.onFailure local: GCRA at rate / redis.instances */
  Local = 4,
}
export const clusterModeNames: readonly string[] = ['off', 'lease', 'allow', 'deny', 'local'];
// ---- split weights (Int32) --------------------------------------------------------------
//
// One row (one cache line) per route with a `split`, in the order the config lists them.
// The primary alone writes a row, between two increments of its seqlock word, so a
// change of every side's weight (a blue/green flip) is seen by a request whole or not
// at all. Weights are cumulative thresholds out of kSplitScale: side i takes the
// requests whose draw x (in [0, kSplitScale)) is below threshold i and not below i − 1.
export const kSplitRows = 256;
export const kSplitMaxSides = 8;
/** 2^20: one part in about a million, and a 32-bit hash shifted right by 12 lands in it */
export const kSplitScale = 1 << 20;
/** [seq] seqlock: odd while the primary writes this row */
export const kSplitSeqInt32 = 0;
/** [seq] sides in use */
export const kSplitSidesInt32 = 1;
/** [seq] cumulative thresholds, one per side (kSplitMaxSides words) */
export const kSplitCumulativeInt32 = 2;
export const kSplitRowInt32 = 2 * kWordsPerCacheLine;
// ---- feature flags (Int32) -------------------------------------------------------------
//
// One word per flag slot, [primary] plain Atomics.store per change, read with one
// Atomics.load by requests on routes that use a flag (src/shm/flag-table.ts). The
// primary gives each configured flag name a slot and keeps it across reloads.

/** flag slots; a fixed count, since flags are few and a word each */
export const kFlagSlots = 256;
/** a flag's value in basis points: 0 off, kFlagOn (10000) on, between: that share of callers */
export const kFlagOn = 10_000;

// ---- sizes ----------------------------------------------------------------------------

export interface LayoutLimits {
  /** worker threads that may ever exist at once (restarts reuse their slot) */
  readonly maxWorkers: number;
  /** upstream slots (config `capacity.upstreams`) */
  readonly maxUpstreams?: number;
  /** endpoint rows per upstream (config `capacity.endpointsPerUpstream`) */
  readonly maxEndpoints?: number;
  /** limiter bucket slots, a power of two (config `capacity.limiterKeys`) */
  readonly limiterSlots?: number;
  /** limiter policy rows (config `capacity.limiterPolicies`) */
  readonly limiterPolicies?: number;
  /** ban table slots, a power of two (config `capacity.banKeys`) */
  readonly banSlots?: number;
  /** bytes of all shared dictionaries together (config `shared`, placed by shared-dict-layout.ts) */
  readonly sharedDictBytes?: number;
}

export const kDefaultMaxUpstreams = 64;
export const kDefaultMaxEndpoints = 128;
export const kDefaultLimiterSlots = 65_536;
export const kDefaultLimiterPolicies = 64;
export const kDefaultBanSlots = 4096;

export interface Layout {
  readonly limits: Required<LayoutLimits>;
  readonly workerAreaOffset: number; // in words
  readonly endpointAreaOffset: number; // in words
  readonly upstreamStrideWords: number;
  readonly limiterPolicyOffset: number; // in words
  readonly limiterSlotOffset: number; // in words
  readonly ledgerOffset: number; // in words
  readonly controlOffset: number; // in words
  readonly clusterPolicyOffset: number; // in words
  readonly leaseSlotOffset: number; // in words
  readonly splitOffset: number; // in words
  readonly banOffset: number; // in words
  readonly flagOffset: number; // in words
  /** the shared dictionary region, last: in words */
  readonly sharedDictOffset: number;
  /** Int32 stride of one worker's ledger */
  readonly ledgerWorkerInt32: number;
  readonly totalWords: number;
  readonly byteLength: number;
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function computeLayout(limits: LayoutLimits): Layout {
  const full: Required<LayoutLimits> = {
    maxWorkers: limits.maxWorkers,
    maxUpstreams: limits.maxUpstreams ?? kDefaultMaxUpstreams,
    maxEndpoints: limits.maxEndpoints ?? kDefaultMaxEndpoints,
    // A power of two so the probe start is `hash & (slots - 1)`.
    limiterSlots: pow2AtLeast(limits.limiterSlots ?? kDefaultLimiterSlots),
    limiterPolicies: limits.limiterPolicies ?? kDefaultLimiterPolicies,
    banSlots: pow2AtLeast(limits.banSlots ?? kDefaultBanSlots),
    sharedDictBytes: Math.ceil((limits.sharedDictBytes ?? 0) / 64) * 64,
  };
  const workerAreaOffset = kHeaderWordCount;
  const endpointAreaOffset = workerAreaOffset + full.maxWorkers * kWorkerSliceWords;
  const upstreamStrideWords = kUpstreamHeaderWords + full.maxEndpoints * kEndpointRowWords;
  const limiterPolicyOffset = endpointAreaOffset + full.maxUpstreams * upstreamStrideWords;
  const limiterSlotOffset = limiterPolicyOffset + full.limiterPolicies * kLimiterPolicyWords;
  const ledgerOffset = limiterSlotOffset + full.limiterSlots * kLimiterSlotWords;
  const ledgerWorkerInt32 = full.maxUpstreams * ledgerUpstreamInt32(full.maxEndpoints);
  const controlOffset = ledgerOffset + (full.maxWorkers * ledgerWorkerInt32) / 2;
  const clusterPolicyOffset = controlOffset + (full.maxUpstreams * kControlUpstreamInt32) / 2;
  const leaseSlotOffset = clusterPolicyOffset + full.limiterPolicies * kClusterPolicyWords;
  const splitOffset = leaseSlotOffset + full.limiterSlots * kLeaseSlotWords;
  const banOffset = splitOffset + (kSplitRows * kSplitRowInt32) / 2;
  const flagOffset = banOffset + full.banSlots * kBanSlotWords;
  // Whole cache lines: the region's dictionaries align their blocks to 64 bytes.
  const sharedDictOffset = Math.ceil((flagOffset + kFlagSlots / 2) / kWordsPerCacheLine) * kWordsPerCacheLine;
  const totalWords = sharedDictOffset + full.sharedDictBytes / 8;
  return { limits: full, workerAreaOffset, endpointAreaOffset, upstreamStrideWords, limiterPolicyOffset, limiterSlotOffset, ledgerOffset, controlOffset, clusterPolicyOffset, leaseSlotOffset, splitOffset, banOffset, flagOffset, sharedDictOffset, ledgerWorkerInt32, totalWords, byteLength: totalWords * 8 };
}

/** Int32 index of worker `w`'s ledger header for upstream `u` (its endpoint words follow at kLedgerHeaderInt32). */
export function ledgerInt32Offset(layout: Layout, w: number, u: number): number {
  return layout.ledgerOffset * 2 + w * layout.ledgerWorkerInt32 + u * ledgerUpstreamInt32(layout.limits.maxEndpoints);
}

export function workerSliceOffset(layout: Layout, workerSlot: number): number {
  return layout.workerAreaOffset + workerSlot * kWorkerSliceWords;
}

/** Int32 index of upstream `u`'s header. */
export function upstreamInt32Offset(layout: Layout, u: number): number {
  return (layout.endpointAreaOffset + u * layout.upstreamStrideWords) * 2;
}

/** Int32 index of row `e` of upstream `u`. */
export function endpointInt32Offset(layout: Layout, u: number, e: number): number {
  return (layout.endpointAreaOffset + u * layout.upstreamStrideWords + kUpstreamHeaderWords + e * kEndpointRowWords) * 2;
}

/** Int32 index of flag slot `f`. */
export function flagInt32Offset(layout: Layout, f: number): number {
  return layout.flagOffset * 2 + f;
}

/** Int32 index of upstream `u`'s control words. */
export function controlInt32Offset(layout: Layout, u: number): number {
  return layout.controlOffset * 2 + u * kControlUpstreamInt32;
}

/** Int32 index of split row `r`. */
export function splitInt32Offset(layout: Layout, r: number): number {
  return layout.splitOffset * 2 + r * kSplitRowInt32;
}

// ---- ban table (Int32 fields; src/shm/ban-table.ts) ----------------------------------
//
// Open-addressed by the hash of (ban policy name, key), linear probing over at most
// kBanMaxProbe slots. Every worker counts refusals and sets bans with Atomics; the
// primary lists, adds and lifts bans. Times are 100 ms ticks since kHeaderBanEpochField.
// A tag is never reset to 0, so a probe may stop at the first empty slot; a slot whose
// window and ban are both over is taken over by the next new key that probes it.

/** [rmw] hash A of the key, | 1 (0 = never used) */
export const kBanTagField = 0;
/** hash B of the key (a second check against collisions of A) */
export const kBanHashBField = 1;
/** hash of the ban policy's name */
export const kBanPolicyField = 2;
/** [rmw] tick the counting window started */
export const kBanWindowStartField = 3;
/** [rmw] refusals counted in the window */
export const kBanCountField = 4;
/** [rmw] tick the ban ends (0 or past: not banned) */
export const kBanUntilField = 5;
/** [rmw] bans set on this key (automatic and manual) */
export const kBanTripsField = 6;
/** tick the last ban was set */
export const kBanSetAtField = 7;
/** 0 automatic, 1 through the admin API or an override */
export const kBanSourceField = 8;
/** tick after which the slot holds nothing worth keeping (window and ban over) */
export const kBanExpiresField = 9;
/** bytes of the key (UTF-8, at most kBanKeyMaxBytes kept) */
export const kBanKeyLengthField = 10;
export const kBanKeyInt32Offset = 16;
export const kBanKeyMaxBytes = 64;
/** two cache lines: 16 Int32 of fields, then 64 bytes of key */
export const kBanSlotWords = 2 * kWordsPerCacheLine;
export const kBanSlotInt32 = kBanSlotWords * 2;
export const kBanMaxProbe = 8;
export const kBanTickMs = 100;

/** Int32 index of ban slot `i`. */
export function banInt32Offset(layout: Layout, i: number): number {
  return layout.banOffset * 2 + i * kBanSlotInt32;
}
