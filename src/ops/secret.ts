// A string that must never reach a log line, an error message, a JSON dump or a debugger print.
// Pool keys, NATS credentials and the prepared provider auth header values travel in this wrapper so
// that an accidental `console.log(config)` or `JSON.stringify(state)` prints `***` instead of a key.
//
// The plaintext sits in an ECMAScript private field: private fields are invisible to
// `Object.keys`, `JSON.stringify`, `structuredClone`, spread and every inspector, so the only way to
// read it is the explicit `expose()` call, which makes each use greppable in review.
// Zeroing memory on drop (as the Rust `Secret` does) is impossible for JS strings; we do not pretend.

const REDACTED = "***";
const INSPECTED = "Secret(***)";
// Bun.inspect, util.inspect and console.log all honour this registered symbol.
const INSPECT = Symbol.for("nodejs.util.inspect.custom");

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The only way to read the plaintext. Call it at the last moment (building the upstream header). */
  expose(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  // Covers template literals, `+` concatenation and `String(x)` whatever the hint.
  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [INSPECT](): string {
    return INSPECTED;
  }
}
