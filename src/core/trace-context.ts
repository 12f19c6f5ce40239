/**
 * W3C Trace Context for one request: continue the client's trace (`traceparent`) or start one, and
 * name the span the backend call will be, so the backend's spans hang under ModelGuard's.
 */
import { randomBytes } from 'node:crypto';
import type { TraceContext } from './events.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * The trace context of a new request, or undefined when it is not traced. A client traceparent
 * marked sampled is always followed; otherwise `sampleRate` decides.
 */
export function startTrace(traceparent: string | undefined, sampleRate: number): TraceContext | undefined {
  const m = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.trim().toLowerCase());
  const valid = m !== null && m[1] !== '0'.repeat(32) && m[2] !== '0'.repeat(16);
  const clientSampled = valid && (Number.parseInt(m[3] as string, 16) & 1) === 1;
  if (!clientSampled && Math.random() >= sampleRate) return undefined;
  return {
    traceId: valid ? (m[1] as string) : hex(16),
    parentSpanId: valid ? m[2] : undefined,
    spanId: hex(8),
    backendSpanId: hex(8),
  };
}

/** The traceparent sent to the backend: same trace, the backend call's span as parent, sampled. */
export function backendTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.backendSpanId}-01`;
}
