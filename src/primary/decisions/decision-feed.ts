// The decision feed: the last N control-plane decisions in a ring, each with an id
// that only grows, so a reader (the JSON endpoint, an SSE client after a reconnect,
// `tidegate top`) asks "what happened after id X" and never sees one twice.
//
// Events reach the ring only through recordDecision() (decision-log.ts), which writes
// the log line in the same call: the feed and the log cannot disagree.

/** Who a decision is about. Fields are present when the event names them. */
export interface DecisionSubject {
  readonly upstream?: string;
  readonly endpoint?: string;
  readonly route?: string;
  readonly worker?: number;
}

export type DecisionLevel = 'info' | 'warn' | 'error';

export interface Decision {
  readonly id: number;
  /** ISO-8601, the same instant the log line carries */
  readonly time: string;
  /** the log event name, e.g. `endpoint-ejected` (the README lists every kind) */
  readonly kind: string;
  readonly level: DecisionLevel;
  readonly subject: DecisionSubject;
  readonly message: string;
  /** the inputs that caused it: every other field of the log event */
  readonly why: Readonly<Record<string, unknown>>;
}

export type DecisionListener = (d: Decision) => void;

export interface DecisionQuery {
  /** only decisions with a larger id */
  readonly since?: number;
  readonly kinds?: readonly string[];
  /** at most this many, the newest ones */
  readonly limit?: number;
}

export class DecisionFeed {
  private ring: (Decision | undefined)[];
  private head = 0; // next write position
  private count = 0;
  private nextId = 1;
  private readonly listeners = new Set<DecisionListener>();
  /** decisions recorded since start, by kind (for metrics) */
  readonly totals = new Map<string, number>();

  constructor(private capacity: number) {
    this.ring = new Array<Decision | undefined>(capacity);
  }

  get size(): number {
    return this.capacity;
  }

  /** id of the newest decision, 0 before the first */
  get latestId(): number {
    return this.nextId - 1;
  }

  /** id of the oldest decision still held, 0 when empty */
  get oldestId(): number {
    return this.count === 0 ? 0 : this.nextId - this.count;
  }

  get retained(): number {
    return this.count;
  }

  push(d: Omit<Decision, 'id'>): Decision {
    const full: Decision = { id: this.nextId++, ...d };
    this.ring[this.head] = full;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.totals.set(full.kind, (this.totals.get(full.kind) ?? 0) + 1);
    for (const l of this.listeners) {
      try {
        l(full);
      } catch {
        // A broken subscriber must never cost the decision or the other subscribers.
      }
    }
    return full;
  }

  /** Oldest first. */
  query(q: DecisionQuery = {}): Decision[] {
    const since = q.since ?? 0;
    const kinds = q.kinds && q.kinds.length > 0 ? new Set(q.kinds) : null;
    const out: Decision[] = [];
    // Ids are consecutive in the ring, so the first one after `since` is found by arithmetic.
    const skip = Math.max(0, Math.min(this.count, since - this.oldestId + 1));
    for (let i = skip; i < this.count; i++) {
      const d = this.ring[(this.head - this.count + i + this.capacity) % this.capacity]!;
      if (kinds === null || kinds.has(d.kind)) out.push(d);
    }
    const limit = q.limit ?? Infinity;
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  subscribe(l: DecisionListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** A new capacity (reload): the newest decisions that fit are kept, ids continue. */
  resize(capacity: number): void {
    if (capacity === this.capacity) return;
    const keep = this.query().slice(-capacity);
    this.capacity = capacity;
    this.ring = new Array<Decision | undefined>(capacity);
    this.count = 0;
    this.head = 0;
    for (const d of keep) {
      this.ring[this.head] = d;
      this.head = (this.head + 1) % capacity;
      this.count++;
    }
  }
}
