// An UpstreamHandler for the upstream client's unit tests: collects the response,
// settles once (settling twice fails the test), and can hold its reads.
import assert from 'node:assert/strict';
import type { UpstreamHandler } from '../../src/worker/upstream/upstream-handler.js';

export interface Result {
  status: number;
  body: string;
  error: (Error & { code?: string }) | null;
}

export class Collect implements UpstreamHandler {
  status = 0;
  body = '';
  abort: ((err?: Error) => void) | null = null;
  connects = 0;
  settled = false;
  /** return false from onData this many times, resuming 20 ms later each time */
  holdTimes = 0;
  private resume: (() => void) | null = null;
  readonly done: Promise<Result>;
  private settle!: (r: Result) => void;
  constructor() {
    this.done = new Promise((r) => (this.settle = r));
  }
  onConnect(abort: (err?: Error) => void): void {
    this.connects++;
    this.abort = abort;
  }
  onHeaders(status: number, _h: Buffer[], resume: () => void): boolean {
    this.status = status;
    this.resume = resume;
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.body += chunk.toString();
    if (this.holdTimes > 0) {
      this.holdTimes--;
      setTimeout(() => this.resume!(), 20);
      return false;
    }
    return true;
  }
  onComplete(): void {
    this.finish(null);
  }
  onError(err: Error & { code?: string }): void {
    this.finish(err);
  }
  private finish(error: (Error & { code?: string }) | null): void {
    assert.equal(this.settled, false, 'settled twice');
    this.settled = true;
    this.settle({ status: this.status, body: this.body, error });
  }
}
