/**
 * The audit log: one JSON line per allow or deny decision (time, request id, app, group, model,
 * protocol, source, decision, reason code), to stdout, stderr or a file rotated by size. It is
 * built from the request records, which hold no headers, keys or bodies: secrets cannot reach it.
 */
import { closeSync, existsSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import type { OutcomeCode } from '../core/errors.ts';
import type { RequestEvents, RequestRecord } from '../core/events.ts';

/** Outcomes decided by identity and policy: the request was refused before admission. */
const DENIALS = new Set<OutcomeCode>(['MG_UNAUTHENTICATED', 'MG_FORBIDDEN', 'MG_MODEL_NOT_FOUND', 'MG_BAD_REQUEST', 'MG_TOO_LARGE', 'MG_RATE_LIMITED']);

export interface AuditOptions {
  readonly destination: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
}

export function auditLine(r: RequestRecord): string {
  return JSON.stringify({
    time: new Date(r.time).toISOString(),
    id: r.id,
    app: r.app ?? null,
    group: r.group ?? null,
    model: r.model ?? null,
    protocol: r.protocol,
    source: r.source ?? null,
    decision: DENIALS.has(r.outcome) ? 'deny' : 'allow',
    reason: r.outcome,
  });
}

export class AuditLog {
  private fd: number;
  private size = 0;
  private readonly file: string | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly opts: AuditOptions,
    events: RequestEvents,
  ) {
    if (opts.destination === 'stdout') this.fd = 1;
    else if (opts.destination === 'stderr') this.fd = 2;
    else {
      this.file = opts.destination;
      this.fd = openSync(this.file, 'a', 0o600);
      this.size = fstatSync(this.fd).size;
    }
    this.unsubscribe = events.subscribe((r) => this.write(`${auditLine(r)}\n`));
  }

  private write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.file !== undefined && this.size > 0 && this.size + bytes > this.opts.maxBytes) this.rotate();
    // Synchronous: an audit line is never lost to a crash after the answer it records.
    writeSync(this.fd, line);
    this.size += bytes;
  }

  /** file → file.1 → … → file.N (the oldest is dropped). */
  private rotate(): void {
    const file = this.file as string;
    closeSync(this.fd);
    for (let i = this.opts.maxFiles - 1; i >= 1; i--) {
      if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    }
    renameSync(file, `${file}.1`);
    this.fd = openSync(file, 'a', 0o600);
    this.size = 0;
  }

  close(): void {
    this.unsubscribe();
    if (this.file !== undefined) closeSync(this.fd);
  }
}
