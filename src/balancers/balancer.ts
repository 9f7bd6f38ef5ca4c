// The picker contract (APISIX style: one picker per file, rebuilt per config
// generation). `pick` returns an endpoint index or -1 when none is usable;
// `avoid` is the endpoint a retry must not land on again (-1 for none).
export interface Balancer {
  pick(avoid: number): number;
}
