// `plugins`: the ES modules a config loads (src/plugins). Their definitions and each
// route's plugin config are checked on the primary by src/config/plugin-check.ts,
// after this schema: importing a module is asynchronous and zod's parse is not.
import { z } from 'zod';
import { resolve } from 'node:path';

/** a relative path is taken from the working directory, like certificate files */
export const pluginPathsSchema = z.array(z.string().min(1).transform((p) => resolve(p))).default([]);
