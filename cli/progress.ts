import { Transform, type Readable } from 'node:stream';
import { Presets, SingleBar } from 'cli-progress';

// Progress on stderr for long uploads and waits (`ctem ingest`, `ctem intel import`): on by default
// when stderr is a terminal, `--progress` forces it (a line every second when not a terminal),
// `--no-progress` silences it. stdout stays the command's result.

export const wantsProgress = (flag: boolean | undefined) => flag ?? Boolean(process.stderr.isTTY);

function bar(format: string): SingleBar {
  return new SingleBar(
    { format, stream: process.stderr, hideCursor: true, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 1000, etaBuffer: 50, formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? mib(v) : String(v)) },
    Presets.shades_classic,
  );
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

/**
 * Passes `source` through, drawing the bytes sent against `total` (the file's size, or unknown for
 * a packed directory). Call `stop()` once the platform has answered.
 */
export function uploadProgress(source: Readable, label: string, total: number | undefined, show: boolean): { stream: Readable; stop(): void } {
  if (!show) return { stream: source, stop: () => {} };
  const progress = bar(total ? `${label} [{bar}] {percentage}% | {value} of {total} | {speed}` : `${label} | {value} sent | {speed}`);
  let sent = 0;
  const started = Date.now();
  progress.start(total ?? 0, 0, { speed: '' });
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      progress.update(sent, { speed: `${mib(sent / seconds)}/s` });
      done(null, chunk);
    },
  });
  source.on('error', (err) => counter.destroy(err));
  return {
    stream: source.pipe(counter),
    stop: () => {
      progress.update(sent);
      progress.stop();
    },
  };
}

/** An elapsed-time line while the platform works (`ingesting scan 42 | running | 12s`). */
export function waitProgress(label: string, show: boolean): { update(state: string): void; stop(): void } {
  if (!show) return { update: () => {}, stop: () => {} };
  const progress = new SingleBar({ format: `${label} | {state} | {duration}s`, stream: process.stderr, hideCursor: true, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 1000 });
  progress.start(1, 0, { state: 'waiting' });
  return { update: (state) => progress.update(0, { state }), stop: () => progress.stop() };
}
