/**
 * Latency histograms the receiver processes fill and the runner merges: logarithmic buckets
 * 2% wide from 1 µs to over a minute, so percentiles from several processes add up exactly.
 * @module
 */

const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1024;

/** Sparse histogram as sent between processes: `[bucket, count]` pairs. */
export type SparseHistogram = [number, number][];

/** A latency histogram in milliseconds. */
export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;

  get total(): number {
    return this.#total;
  }

  /** Records one latency in milliseconds. */
  add(ms: number): void {
    const micros = ms * 1000;
    const bucket = micros <= 1
      ? 0
      : Math.min(BUCKETS - 1, Math.floor(Math.log(micros) / LOG_GROWTH));
    this.#counts[bucket]!++;
    this.#total++;
  }

  /** Adds another histogram's counts. */
  merge(sparse: SparseHistogram): void {
    for (const [bucket, count] of sparse) {
      this.#counts[bucket]! += count;
      this.#total += count;
    }
  }

  reset(): void {
    this.#counts.fill(0);
    this.#total = 0;
  }

  toSparse(): SparseHistogram {
    const sparse: SparseHistogram = [];
    this.#counts.forEach((count, bucket) => {
      if (count > 0) sparse.push([bucket, count]);
    });
    return sparse;
  }

  /** The latency in ms at quantile `q` (0..1), to within 2%; NaN when empty. */
  quantile(q: number): number {
    if (this.#total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket]!;
      if (seen >= rank) return GROWTH ** (bucket + 0.5) / 1000;
    }
    return GROWTH ** BUCKETS / 1000;
  }
}

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
