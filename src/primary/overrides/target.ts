// What an override can change. Each run-time knob (an endpoint's weight or drain, a
// rate-limit policy's rate, a breaker, a route's split, an access list, a flag) is one
// target: it parses what an operator or an event action asks for, applies it where
// workers read it, and puts the configured value back when the override is deleted
// or expires. The override store owns expiry, persistence, audit and the API; targets
// own only the value.
import type { Config } from '../../config/schema.js';

export type ParseResult<S> = { ok: true; spec: S; key: string } | { ok: false; issues: string[] };

export interface OverrideTarget<S = unknown> {
  /** the `kind` of an override: `endpoint`, `rate-limit`, `breaker`, `split`, `ip-access`, `flag`, … */
  readonly kind: string;
  /**
   * Checks what was asked (`target` names the thing, `value` the new setting) against
   * the running config; `key` identifies the thing overridden, so a second override
   * of the same thing replaces the first.
   */
  parse(raw: { target: unknown; value: unknown }, config: Config): ParseResult<S>;
  /** makes the override's value the effective one; idempotent (re-applied after a restart or reload) */
  apply(spec: S): void;
  /** puts the configured value back */
  restore(spec: S): void;
  /**
   * After a reload: why the override no longer fits `next` (its target is gone, or the
   * reload changed the value it overrides), or null when it still holds.
   */
  conflict(spec: S, prev: Config, next: Config): string | null;
}
