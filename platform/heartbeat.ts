import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

// Every activity given a heartbeat timeout heartbeats while it runs. Set-based scoring and ticket
// planning run one long statement with no progress to report, yet a worker that dies mid-statement
// must be noticed within the heartbeat timeout (a minute), not at the start-to-close timeout (10 to
// 30 minutes). Activities that report progress themselves keep doing so; this only fills the gaps.

class HeartbeatWhileRunning implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const timeoutMs = this.ctx.info.heartbeatTimeoutMs;
    if (!timeoutMs) return next(input);
    // Three beats per timeout: one lost or late beat does not time the activity out.
    const timer = setInterval(() => this.ctx.heartbeat(), Math.max(Math.floor(timeoutMs / 3), 100));
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}

export const heartbeatWhileRunning: ActivityInterceptorsFactory = (ctx) => ({ inbound: new HeartbeatWhileRunning(ctx) });
