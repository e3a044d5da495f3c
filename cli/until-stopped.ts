// `ctem start`, `api`, `worker` and `cluster` print what they brought up (never a secret: `ctem token`
// prints those on demand), then run until Ctrl-C or SIGTERM (or, with CTEM_STOP_WHEN_STDIN_CLOSES=1,
// until their stdin closes) and stop what they started.
export async function untilStopped(lines: string[], stop: () => Promise<void>, log: (line: string) => void): Promise<number> {
  console.log(lines.join('\n'));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    // A process started by a benchmark or a test stops with it, even when that one is killed with
    // SIGKILL: its end of our stdin closes. Otherwise an orphan would hold its port and database.
    if (process.env.CTEM_STOP_WHEN_STDIN_CLOSES === '1') {
      process.stdin.once('close', () => resolve());
      process.stdin.once('end', () => resolve());
      process.stdin.resume();
    }
  });
  log('stopping...');
  await stop();
  log('stopped');
  return 0;
}
