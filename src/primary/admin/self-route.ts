// GET /v1/tokens/self: which token a request carries and what it may do, so an
// operator (or the console) can tell a read-only token from a traffic one before
// trying a change.
import type { ApiRoute } from './api-router.js';
import { SCOPES } from './tokens.js';

export const selfRoute: ApiRoute = {
  method: 'GET',
  path: '/v1/tokens/self',
  scope: 'read',
  handle: ({ caller }) => ({ body: { name: caller.name, scopes: SCOPES.filter((s) => caller.scopes.has(s)) } }),
};
