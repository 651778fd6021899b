'use strict';

/**
 * A bounded cache with a deadline per entry. A Map keeps insertion order, so the oldest entry is
 * the first key: when the cache is full, that one goes. Expired entries go when they are read.
 */
class TtlCache {
  /**
   * @param {number} max  most entries kept (at least 1)
   * @param {() => number} now  clock in milliseconds
   */
  constructor(max, now) {
    this.max = Math.max(1, Math.floor(max));
    this.now = now;
    this.map = new Map();
  }

  get size() {
    return this.map.size;
  }

  /** The value stored under `key`, or undefined when there is none or it has expired. */
  get(key) {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (this.now() >= e.until) {
      this.map.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Stores `value` for `ttlMs` (nothing is stored for ttlMs <= 0). */
  set(key, value, ttlMs) {
    this.map.delete(key); // a new answer is the newest entry
    if (!(ttlMs > 0)) return;
    while (this.map.size >= this.max) {
      this.map.delete(this.map.keys().next().value);
    }
    this.map.set(key, { value, until: this.now() + ttlMs });
  }

  delete(key) {
    this.map.delete(key);
  }

  clear() {
    this.map.clear();
  }
}

module.exports = { TtlCache };
