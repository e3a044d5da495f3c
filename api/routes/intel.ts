import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hono } from 'hono';
import { importIntelFiles } from '../../activities/prioritization.js';
import { FeedError } from '../../prioritization/intel-feeds.js';
import type { AppEnv } from '../context.js';
import { problem } from '../problem.js';

/**
 * Import a threat-intel feed file: `POST /api/v1/intel/epss` (FIRST EPSS CSV, gzipped or not) or
 * `POST /api/v1/intel/kev` (CISA KEV JSON). A malformed feed is rejected whole.
 */
export const intelRoutes = new Hono<AppEnv>().post('/api/v1/intel/:kind{epss|kev}', async (c) => {
  const deps = c.get('deps');
  const kind = c.req.param('kind') as 'epss' | 'kev';
  const body = c.req.raw.body;
  if (!body) return problem(c, 400, 'empty_feed', 'the request body must be the feed file');
  await mkdir(deps.reportsDir, { recursive: true });
  const gz = c.req.header('content-encoding') === 'gzip' || c.req.query('gzip') === 'true';
  const file = join(deps.reportsDir, `${kind}-${randomUUID()}${kind === 'epss' && gz ? '.csv.gz' : ''}`);
  try {
    await pipeline(Readable.fromWeb(body as never), createWriteStream(file));
    const [result] = await importIntelFiles(deps.database, kind === 'epss' ? { epssFile: file } : { kevFile: file });
    return c.json(result, 200);
  } catch (err) {
    if (err instanceof FeedError) return problem(c, 400, 'invalid_feed', err.message);
    throw err;
  } finally {
    await rm(file, { force: true });
  }
});
