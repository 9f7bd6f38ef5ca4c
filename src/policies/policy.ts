// What a policy file provides (APISIX style: name, schema, phase functions).
// Phase functions run on worker threads, so a definition must not import the
// control plane; its validated config travels to workers by structured clone.
import type { z } from 'zod';

export interface PolicyDefinition {
  readonly name: string;
  readonly schema: z.ZodType;
}
