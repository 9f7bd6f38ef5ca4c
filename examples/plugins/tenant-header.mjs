// Example plugin: every request must name its tenant in a header. The tenant is passed
// to the upstream as X-Tenant-Id, echoed to the client, and counted per tenant in a
// shared dictionary (readable at GET /v1/shared/<dict>?key=<tenant>).
//
//   plugins: [examples/plugins/tenant-header.mjs]
//   shared: { tenants: { size: 1mb } }
//   routes:
//     - upstream: app
//       policies:
//         - plugin: { name: tenant-header, config: { header: x-tenant, dict: tenants } }

/** @type {import('tidegate/plugin').PluginDefinition<{ header: string, dict?: string, allow?: string[] }>} */
export default {
  name: 'tenant-header',
  schema: (z) =>
    z.strictObject({
      /** the request header that names the tenant */
      header: z.string().regex(/^[a-z0-9-]+$/, 'expected a lower-case header name').default('x-tenant'),
      /** a shared dictionary to count requests per tenant in */
      dict: z.string().optional(),
      /** when given, only these tenants are let through (others get 403) */
      allow: z.array(z.string().min(1)).optional(),
    }),
  create(config, env) {
    // Looked up once per generation, not per request.
    const counts = config.dict === undefined ? null : env.shared(config.dict);
    const allowed = config.allow === undefined ? null : new Set(config.allow);
    return {
      access(ctx) {
        const tenant = ctx.header(config.header);
        if (tenant === undefined || tenant === '') {
          ctx.respond(400, `missing ${config.header} header\n`);
          return;
        }
        if (allowed !== null && !allowed.has(tenant)) {
          ctx.respond(403, JSON.stringify({ error: 'tenant not allowed', tenant }), { 'content-type': 'application/json' });
          return;
        }
        ctx.upstreamHeaders.set('x-tenant-id', tenant);
        ctx.responseHeaders.set('x-tenant-id', tenant);
        if (counts !== null) counts.incr(tenant, 1, 0);
      },
    };
  },
};
