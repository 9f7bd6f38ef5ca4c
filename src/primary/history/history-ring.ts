// A fixed-size time-series ring for the console's charts: one timestamp column and,
// per named series, `fields` float columns. Memory is fixed by capacity × fields ×
// series (Float32: rates and milliseconds need no more than 7 significant digits).
// A series that stops reporting gets NaN points and is dropped once a whole window
// has passed without it.

export interface SeriesRead {
  readonly name: string;
  /** one array per field, oldest first; null where the series had no value */
  readonly values: readonly (readonly (number | null)[])[];
}

interface Series {
  readonly values: Float32Array;
  lastTick: number;
}

export class HistoryRing {
  private readonly times: Float64Array;
  private head = 0;
  private count = 0;
  private tick = 0;
  private readonly series = new Map<string, Series>();

  constructor(
    readonly capacity: number,
    readonly fields: number,
  ) {
    this.times = new Float64Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  get seriesCount(): number {
    return this.series.size;
  }

  /** One point in time; `values` holds each reporting series' fields (NaN for "no value"). */
  push(timeMs: number, values: ReadonlyMap<string, ArrayLike<number>>): void {
    const at = this.head;
    this.times[at] = timeMs;
    this.tick++;
    for (const [name, v] of values) {
      let s = this.series.get(name);
      if (s === undefined) this.series.set(name, (s = { values: new Float32Array(this.capacity * this.fields).fill(NaN), lastTick: 0 }));
      s.lastTick = this.tick;
      for (let f = 0; f < this.fields; f++) s.values[at * this.fields + f] = v[f] ?? NaN;
    }
    for (const [name, s] of this.series) {
      if (s.lastTick === this.tick) continue;
      if (this.tick - s.lastTick >= this.capacity) this.series.delete(name);
      else for (let f = 0; f < this.fields; f++) s.values[at * this.fields + f] = NaN;
    }
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Points with time > sinceMs (all when absent), oldest first; only `names` when given. */
  read(sinceMs = -Infinity, names?: ReadonlySet<string>): { times: number[]; series: SeriesRead[] } {
    const idx: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const at = (this.head - this.count + i + this.capacity) % this.capacity;
      if (this.times[at]! > sinceMs) idx.push(at);
    }
    const series: SeriesRead[] = [];
    for (const [name, s] of this.series) {
      if (names !== undefined && !names.has(name)) continue;
      const values: (number | null)[][] = [];
      for (let f = 0; f < this.fields; f++) {
        const col = new Array<number | null>(idx.length);
        for (let i = 0; i < idx.length; i++) {
          const v = s.values[idx[i]! * this.fields + f]!;
          // Float32 carries ~7 digits; printing its binary tail would only add noise.
          col[i] = Number.isNaN(v) ? null : Math.round(v * 1000) / 1000;
        }
        values.push(col);
      }
      series.push({ name, values });
    }
    series.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { times: idx.map((at) => this.times[at]!), series };
  }
}
