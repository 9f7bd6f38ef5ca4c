// The decision feed's admin endpoints: GET /v1/decisions (JSON) and
// GET /v1/decisions/stream (Server-Sent Events), behind the admin token like the rest.
import type { AdminRoutes } from '../admin-server.js';
import type { DecisionFeed } from './decision-feed.js';
import { parseDecisionQuery } from './decision-query.js';
import type { DecisionStream } from './decision-stream.js';

/** Default page size of GET /v1/decisions when no limit is given. */
const DEFAULT_LIMIT = 100;

export function decisionRoutes(feed: DecisionFeed, stream: DecisionStream): Pick<Required<AdminRoutes>, 'extra' | 'streams'> {
  return {
    extra: {
      '/v1/decisions': async (url) => {
        const q = parseDecisionQuery(url);
        const limit = q.limit ?? DEFAULT_LIMIT;
        // With `since` a reader pages forward (the oldest `limit` after it, `more` when
        // there are others); without, it gets the newest `limit`.
        let decisions = feed.query(q.since === undefined ? { ...q, limit } : { ...q, limit: undefined });
        const more = q.since !== undefined && decisions.length > limit;
        if (more) decisions = decisions.slice(0, limit);
        const body = { latestId: feed.latestId, oldestId: feed.oldestId, size: feed.size, more, decisions };
        return { type: 'application/json', body: JSON.stringify(body) };
      },
    },
    streams: { '/v1/decisions/stream': (req, res, url) => stream.handle(req, res, url) },
  };
}
