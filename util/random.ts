/**
 * A small seeded generator (xoshiro128**) whose whole state is four 32-bit
 * words, so that a checkpoint can store it and a resumed run continues the
 * same stream.
 */
export type RandomState = [number, number, number, number];

export class Random {
  #s: Uint32Array;

  constructor(seedOrState: number | RandomState) {
    this.#s = new Uint32Array(4);
    if (typeof seedOrState === "number") {
      // splitmix32 spreads a small seed over the four words.
      let x = seedOrState >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.#s[i] = (z ^ (z >>> 16)) >>> 0;
      }
    } else {
      this.#s.set(seedOrState);
    }
    if (this.#s.every((word) => word === 0)) this.#s[0] = 1;
  }

  get state(): RandomState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Integer uniform in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * Puts `random` in place of Math.random, from which tfjs draws weight
 * initialisations and dropout masks. Returns the undo.
 */
export function seedMathRandom(random: Random): () => void {
  const original = Math.random;
  Math.random = () => random.next();
  return () => {
    Math.random = original;
  };
}

/** Runs `f` with `random` in place of Math.random. */
export function withMathRandom<T>(random: Random, f: () => T): T {
  const restore = seedMathRandom(random);
  try {
    return f();
  } finally {
    restore();
  }
}
