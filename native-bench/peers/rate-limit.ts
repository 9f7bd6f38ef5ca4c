// The one rate limit both the nginx+Lua peer and tidegate's rate-limit peer enforce:
// keyed on the X-User-Id header every load generator sends (one key: all workers
// contend on one bucket, in both implementations), high enough never to reject bench
// traffic — both pay for the check, neither answers 429s fast.
export const RATE_LIMIT = {
  header: 'x-user-id',
  headerValue: 'bench-user-1',
  ratePerSecond: 10_000_000,
  burst: 1_000_000,
} as const;
