/**
 * The mutating admission webhook: an HTTPS server (port 9443 by default) that answers
 * admission.k8s.io/v1 AdmissionReviews for pods on POST /inject with a JSON Patch (inject.ts
 * decides), an empty allowance (skipped pods), or a rejection with a message `kubectl` shows the user.
 * Certificates can be swapped while running (setCertificate) when certs.ts renews them.
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decide } from './inject.ts';
import type { Decision, InjectOptions, PodLike } from './inject.ts';

export interface WebhookOptions extends InjectOptions {
  readonly cert: string;
  readonly key: string;
  /** Listen address; default 0.0.0.0:9443. */
  readonly host?: string;
  readonly port?: number;
  /** Whether an App of this name exists (from the controller's current snapshot). */
  readonly knownApp: (name: string) => boolean;
  /** Every decision, for logs and metrics. */
  readonly onDecision?: (d: Decision & { namespace: string; pod: string; uid: string }) => void;
}

const MAX_BODY = 4 * 1024 * 1024;

interface AdmissionRequest {
  uid?: string;
  kind?: { kind?: string };
  namespace?: string;
  operation?: string;
  object?: PodLike;
}

export class InjectionWebhook {
  readonly #o: WebhookOptions;
  readonly #server: Server;

  constructor(options: WebhookOptions) {
    this.#o = options;
    this.#server = createServer({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' }, (req, res) => {
      // A client that goes away mid-body, or a throwing onDecision, ends this request only.
      this.#handle(req, res).catch(() => res.destroy());
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port ?? 9443, this.#o.host ?? '0.0.0.0', () => resolve());
    });
    const a = this.#server.address() as AddressInfo;
    return `https://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Serves new certificates to new connections (renewal without a restart). */
  setCertificate(cert: string, key: string): void {
    this.#server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const url = new URL(req.url ?? '/', 'https://x');
    if (req.method === 'GET' && (url.pathname === '/healthz' || url.pathname === '/readyz')) return send(200, { status: 'ok' });
    if (url.pathname !== '/inject') return send(404, { error: `no route ${url.pathname}; the webhook serves POST /inject` });
    if (req.method !== 'POST') return send(405, { error: 'POST an admission.k8s.io/v1 AdmissionReview' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return send(413, { error: `AdmissionReview over ${MAX_BODY} bytes` });
      chunks.push(chunk as Buffer);
    }
    let review: { apiVersion?: string; kind?: string; request?: AdmissionRequest };
    try {
      review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof review;
    } catch {
      return send(400, { error: 'body is not JSON: expected an admission.k8s.io/v1 AdmissionReview' });
    }
    const request = review.request;
    if (review.kind !== 'AdmissionReview' || request?.uid === undefined) return send(400, { error: 'expected an admission.k8s.io/v1 AdmissionReview with request.uid' });
    const answer = (response: Record<string, unknown>): void => send(200, { apiVersion: review.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, ...response } });

    const namespace = request.namespace ?? request.object?.metadata?.namespace ?? '';
    const podName = request.object?.metadata?.name ?? `${request.object?.metadata?.generateName ?? ''}*`;
    let decision: Decision;
    if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE' || request.object === undefined) {
      decision = { kind: 'skip', reason: `not a pod creation (${request.kind?.kind ?? '?'} ${request.operation ?? '?'})` };
    } else {
      try {
        decision = decide(request.object, namespace, this.#o, this.#o.knownApp);
      } catch (e) {
        // A malformed pod must not take the webhook down; the API server reports this to the user.
        decision = { kind: 'deny', message: `ModelGuard injection failed: ${(e as Error).message}` };
      }
    }
    this.#o.onDecision?.({ ...decision, namespace, pod: podName, uid: request.uid });
    if (decision.kind === 'deny') return answer({ allowed: false, status: { code: 403, reason: 'Forbidden', message: decision.message } });
    if (decision.kind === 'skip') return answer({ allowed: true });
    return answer({ allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') });
  }
}
