// Iterator helpers (ES2025: Iterator.prototype.map, filter, toArray, ...) for Node 20.
// Allure 3.18's quality-gate calls `map.values().toArray()`, which Node 22 has and Node 20
// lacks ("toArray is not a function"). Loaded with `node --import`; a no-op where Node has them.
const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
const helpers = {
  *map(fn) { let i = 0; for (const v of this) yield fn(v, i++); },
  *filter(fn) { let i = 0; for (const v of this) if (fn(v, i++)) yield v; },
  *take(n) { if (n <= 0) return; let i = 0; for (const v of this) { yield v; if (++i >= n) return; } },
  *drop(n) { let i = 0; for (const v of this) if (i++ >= n) yield v; },
  *flatMap(fn) { let i = 0; for (const v of this) yield* fn(v, i++); },
  reduce(fn, ...init) {
    let i = 0; let acc = init.length ? init[0] : undefined; let first = !init.length;
    for (const v of this) { if (first) { acc = v; first = false; } else acc = fn(acc, v, i); i++; }
    if (first) throw new TypeError("Reduce of empty iterator with no initial value");
    return acc;
  },
  toArray() { return [...this]; },
  forEach(fn) { let i = 0; for (const v of this) fn(v, i++); },
  some(fn) { let i = 0; for (const v of this) if (fn(v, i++)) return true; return false; },
  every(fn) { let i = 0; for (const v of this) if (!fn(v, i++)) return false; return true; },
  find(fn) { let i = 0; for (const v of this) if (fn(v, i++)) return v; return undefined; },
};
for (const [name, fn] of Object.entries(helpers)) {
  if (typeof IteratorPrototype[name] !== "function") {
    Object.defineProperty(IteratorPrototype, name, { value: fn, writable: true, configurable: true });
  }
}
