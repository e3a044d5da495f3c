import type { Hono } from 'hono';
import type { ConsoleEnv } from '../env.js';
import { apiPages } from './api.js';
import { auditPage } from './audit.js';
import { executivePage } from './executive.js';
import { exposurePages } from './exposures.js';
import { huntingPage } from './hunting.js';
import { identitiesPages } from './identities.js';
import { overviewPage } from './overview.js';
import { programPages } from './program.js';
import { ticketPages } from './tickets.js';

// Every console page, in navigation order. A page is a Hono app with its own routes under /console.
export const CONSOLE_PAGES: Array<Hono<ConsoleEnv>> = [overviewPage, exposurePages, ticketPages, executivePage, huntingPage, programPages, auditPage, apiPages, identitiesPages];
