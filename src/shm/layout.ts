// The whole shared-memory layout, in one place (DESIGN.md §2). Every slot is a named
// constant; typed views in this folder wrap the buffer. Sizes are fixed at start from
// config limits; a reload that needs more room is refused with TG_ERR_SHM_CAPACITY.
//
// Units are 8-byte words (Float64Array / BigInt64Array views share the buffer).
// A "slice" is padded to a multiple of 8 words (64 bytes) so two writers never
// share a cache line.

export const kLayoutVersion = 1;
export const kMagic = 0x7469_6465; // "tide"

export const kWordsPerCacheLine = 8;

/** Header, one cache line: read by everyone, written by the primary. */
export const kHeaderMagicField = 0;
export const kHeaderVersionField = 1;
export const kHeaderGenerationField = 2; // config generation the tables describe
export const kHeaderWorkerSlotsField = 3; // capacity of the worker counter area
export const kHeaderWordCount = kWordsPerCacheLine;

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
export const kWorkerFieldCount = 12;
export const kWorkerSliceWords = Math.ceil(kWorkerFieldCount / kWordsPerCacheLine) * kWordsPerCacheLine;

export interface LayoutLimits {
  /** worker threads that may ever exist at once (restarts reuse their slot) */
  readonly maxWorkers: number;
}

export interface Layout {
  readonly limits: LayoutLimits;
  readonly workerAreaOffset: number; // in words
  readonly totalWords: number;
  readonly byteLength: number;
}

export function computeLayout(limits: LayoutLimits): Layout {
  const workerAreaOffset = kHeaderWordCount;
  const totalWords = workerAreaOffset + limits.maxWorkers * kWorkerSliceWords;
  return { limits, workerAreaOffset, totalWords, byteLength: totalWords * 8 };
}

export function workerSliceOffset(layout: Layout, workerSlot: number): number {
  return layout.workerAreaOffset + workerSlot * kWorkerSliceWords;
}
