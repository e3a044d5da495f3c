import type { Hono } from 'hono';
import type { ConsoleEnv } from '../env.js';
import { apiPages } from './api.js';
import { exposurePages } from './exposures.js';
import { programPages } from './program.js';
import { ticketPages } from './tickets.js';

// Every console page, in navigation order. A page is a Hono app with its own routes under /console.
export const CONSOLE_PAGES: Array<Hono<ConsoleEnv>> = [exposurePages, ticketPages, programPages, apiPages];
