#!/usr/bin/env node
// The `ctem` command: registers tsx's loader in this process and runs the TypeScript CLI, so
// `npx ctem ...` needs no build step and signals (Ctrl-C, docker stop, kill) reach the platform itself.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
