import type { Hono } from 'hono';
import type { ConsoleEnv } from '../env.js';
import { huntingPage } from './hunting.js';

// Every console page, in navigation order. A page is a Hono app with its own routes under /console.
export const CONSOLE_PAGES: Array<Hono<ConsoleEnv>> = [huntingPage];
