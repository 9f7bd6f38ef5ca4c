// Scaling-recommendation webhook: a JSON POST when a recommendation changes, with a
// timeout per attempt and retries with exponential backoff. Runs on the primary's
// control loop, one delivery at a time, never near a request.
// undici is loaded with the first delivery: a gateway without webhooks never loads it.

export interface WebhookConfig {
  readonly url: string;
  readonly timeout: number;
  readonly retries: number;
}

export interface ScalingEvent {
  readonly type: 'scaling-recommendation';
  readonly upstream: string;
  readonly current: number;
  readonly recommended: number;
  readonly previous: number | null;
  readonly metric: string;
  readonly observed: number | null;
  readonly target: number;
  readonly reason: string;
  readonly at: string;
}

export type DeliveryOutcome = { ok: true; attempts: number; status: number } | { ok: false; attempts: number; error: string };

const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 5_000;
/** events waiting beyond this are dropped oldest-first: only the latest state matters */
const MAX_QUEUE = 100;

/** `E`: the JSON event type posted (scaling recommendations by default; rollout phase changes use it too). */
export class WebhookNotifier<E extends object = ScalingEvent> {
  private readonly queue: E[] = [];
  private running = false;
  private closed = false;
  private readonly abort = new AbortController();
  delivered = 0;
  failed = 0;

  constructor(
    private cfg: WebhookConfig,
    private readonly onOutcome: (ev: E, outcome: DeliveryOutcome) => void,
  ) {}

  setConfig(cfg: WebhookConfig): void {
    this.cfg = cfg;
  }

  notify(ev: E): void {
    if (this.closed) return;
    this.queue.push(ev);
    if (this.queue.length > MAX_QUEUE) this.queue.shift();
    if (!this.running) this.drain().catch(() => (this.running = false));
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const ev = this.queue.shift()!;
        const outcome = await this.deliver(ev);
        if (outcome.ok) this.delivered++;
        else this.failed++;
        this.onOutcome(ev, outcome);
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(ev: E): Promise<DeliveryOutcome> {
    const body = JSON.stringify(ev);
    let lastError = '';
    const attempts = this.cfg.retries + 1;
    const { request } = await import('undici');
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (i - 1)), this.abort.signal);
      if (this.closed) return { ok: false, attempts: i, error: 'closed' };
      try {
        const res = await request(this.cfg.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'tidegate-webhook' },
          body,
          headersTimeout: this.cfg.timeout,
          bodyTimeout: this.cfg.timeout,
          signal: AbortSignal.any([AbortSignal.timeout(this.cfg.timeout), this.abort.signal]),
        });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, attempts: i + 1, status: res.statusCode };
        lastError = `HTTP ${res.statusCode}`;
        // A 4xx other than 408/429 will not get better by retrying.
        if (res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) return { ok: false, attempts: i + 1, error: lastError };
      } catch (err) {
        lastError = (err as Error).message;
      }
    }
    return { ok: false, attempts, error: lastError };
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
