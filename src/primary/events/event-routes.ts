// POST /v1/events (scope `events`): Alertmanager webhooks and plain events.
import type { ApiRoute } from '../admin/api-router.js';
import { parseEvents, type EventRouter } from './event-router.js';

export function eventRoutes(router: EventRouter): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/events',
      scope: 'events',
      handle: (req) => ({ body: { events: router.handle(parseEvents(req.body)) } }),
    },
  ];
}
