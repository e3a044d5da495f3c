import type { ApiDeps } from '../api/context.js';
import type { Viewer } from './session.js';

/** Console handlers see the API's dependencies and the signed-in viewer. */
export interface ConsoleEnv {
  Variables: { deps: ApiDeps; viewer: Viewer };
}
