// The nginx-lua peer's "autoscale Lua" policy (autoscale.lua) as a tidegate JS plugin,
// for the tidegate-plugin peer: a GCRA limit per key kept in one shared dictionary with
// get + set (the same non-atomic pair the Lua does), per-route status-class and latency
// counters in another in the log phase. tidegate's log context has no upstream address,
// so the counters are per route where the Lua's are per endpoint (one endpoint here).

/** @type {import('tidegate/plugin').PluginDefinition<{ header: string, rate: number, burst: number }>} */
export default {
  name: 'autoscale',
  schema: (z) => z.strictObject({ header: z.string(), rate: z.number().positive(), burst: z.number().positive() }),
  create(config, env) {
    const limits = env.shared('tg_limits');
    const counters = env.shared('tg_counters');
    const emission = 1 / config.rate;
    const tolerance = config.burst * emission;
    const ttl = Math.ceil(tolerance) + 1;
    const classes = ['req|' + env.route + '|0xx', 'req|' + env.route + '|1xx', 'req|' + env.route + '|2xx', 'req|' + env.route + '|3xx', 'req|' + env.route + '|4xx', 'req|' + env.route + '|5xx'];
    const latKey = 'lat|' + env.route;
    return {
      access(ctx) {
        const key = ctx.header(config.header) ?? ctx.clientIp;
        const now = Date.now() / 1000;
        let tat = limits.get(key);
        if (typeof tat !== 'number' || tat < now) tat = now;
        const next = tat + emission;
        const allowAt = next - tolerance;
        if (allowAt > now) {
          counters.incr('rejected', 1, 0);
          ctx.respond(429, '', { 'retry-after': String(Math.ceil(allowAt - now)) });
          return;
        }
        limits.set(key, next, ttl);
      },
      log(ctx) {
        counters.incr(classes[Math.floor(ctx.status / 100)] ?? classes[0], 1, 0);
        counters.incr(latKey, ctx.durationMs / 1000, 0);
      },
    };
  },
};
