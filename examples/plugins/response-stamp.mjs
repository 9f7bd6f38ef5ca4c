// Example plugin: the response and log phases. It removes headers the upstream should
// not leak, stamps the response with a header of its own, and counts responses by
// status class in a shared dictionary ("2xx", "5xx", …).
//
//   plugins: [examples/plugins/response-stamp.mjs]
//   shared: { responses: { size: 64kb } }
//   routes:
//     - upstream: app
//       policies:
//         - plugin: { name: response-stamp, config: { strip: [x-powered-by], stamp: edge-1, dict: responses } }

/** @type {import('tidegate/plugin').PluginDefinition<{ strip: string[], stamp: string, dict?: string }>} */
export default {
  name: 'response-stamp',
  schema: (z) =>
    z.strictObject({
      strip: z.array(z.string().regex(/^[a-z0-9-]+$/, 'expected a lower-case header name')).default(['server', 'x-powered-by']),
      stamp: z.string().min(1),
      dict: z.string().optional(),
    }),
  create(config, env) {
    const counts = config.dict === undefined ? null : env.shared(config.dict);
    const classes = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
    return {
      response(ctx) {
        for (const name of config.strip) ctx.responseHeaders.remove(name);
        ctx.responseHeaders.set('x-stamp', `${config.stamp}; upstream-status=${ctx.status}`);
      },
      log(ctx) {
        if (counts !== null) counts.incr(classes[Math.floor(ctx.status / 100)] ?? 'other', 1, 0);
      },
    };
  },
};
