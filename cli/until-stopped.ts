// `ctem start`, `api`, `worker` and `cluster` print what they brought up (never a secret: `ctem token`
// prints those on demand), then run until Ctrl-C or SIGTERM and stop what they started.
export async function untilStopped(lines: string[], stop: () => Promise<void>, log: (line: string) => void): Promise<number> {
  console.log(lines.join('\n'));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('stopping...');
  await stop();
  log('stopped');
  return 0;
}
