/**
 * KServe v2 / Open Inference Protocol REST routes (`/v2/...`). Errors answer `{ "error": "..." }`
 * with 400 (bad request), 404 (unknown model, version or route), 405 (wrong method) or 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveOnAccelerator, type ServerContext } from './context.ts';
import { HttpError, notFound, readJson, sendJson } from './http.ts';
import type { DemoModel } from './models.ts';
import { parseInferRequest } from './tensors.ts';

function sendError(res: ServerResponse, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
}

function methodIs(req: IncomingMessage, method: 'GET' | 'POST'): void {
  const actual = req.method === 'HEAD' ? 'GET' : req.method;
  if (actual !== method) throw new HttpError(405, `${req.method ?? '?'} not allowed here; use ${method}`);
}

export function findModel(ctx: ServerContext, name: string, version: string | undefined): DemoModel {
  const model = ctx.models.get(name);
  if (!model) throw notFound(`unknown model "${name}"`);
  if (version !== undefined && !model.versions.includes(version)) throw notFound(`model "${name}" has no version "${version}"`);
  return model;
}

export function metadata(model: DemoModel): Record<string, unknown> {
  return { name: model.name, versions: model.versions, platform: model.platform, inputs: model.inputs, outputs: model.outputs };
}

/** `parts` is the path after `/v2`, split on `/` and URL-decoded. */
export async function handleKserve(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, parts: readonly string[], requestId: string | undefined): Promise<void> {
  try {
    await route(ctx, req, res, parts, requestId);
  } catch (err) {
    sendError(res, err);
  }
}

async function route(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, parts: readonly string[], requestId: string | undefined): Promise<void> {
  const [head, name, ...rest] = parts;
  if (head === undefined) {
    methodIs(req, 'GET');
    sendJson(res, 200, { name: ctx.serverName, version: ctx.serverVersion, extensions: [] });
    return;
  }
  if (head === 'health' && (name === 'live' || name === 'ready') && rest.length === 0) {
    methodIs(req, 'GET');
    // The models are loaded before the server listens, so a listening server is ready.
    sendJson(res, 200, name === 'live' ? { live: true } : { ready: true });
    return;
  }
  if (head !== 'models' || name === undefined || name === '') throw notFound(`no route ${req.url ?? ''}`);

  // models/{m}[/versions/{v}][/ready|/infer]
  let version: string | undefined;
  let tail = rest;
  if (tail[0] === 'versions') {
    version = tail[1];
    if (version === undefined || version === '') throw notFound(`no route ${req.url ?? ''}`);
    tail = tail.slice(2);
  }
  const model = findModel(ctx, name, version);
  const action = tail[0];
  if (tail.length > 1) throw notFound(`no route ${req.url ?? ''}`);
  if (action === undefined) {
    methodIs(req, 'GET');
    sendJson(res, 200, metadata(model));
  } else if (action === 'ready') {
    methodIs(req, 'GET');
    sendJson(res, 200, { name: model.name, ready: true });
  } else if (action === 'infer') {
    methodIs(req, 'POST');
    await infer(ctx, req, res, model, requestId);
  } else {
    throw notFound(`no route ${req.url ?? ''}`);
  }
}

async function infer(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, model: DemoModel, requestId: string | undefined): Promise<void> {
  const request = parseInferRequest(await readJson(req));
  const work = model.prepare(request);
  const id = request.id ?? requestId ?? ctx.nextId();
  serveOnAccelerator(
    ctx,
    model,
    res,
    work,
    (outputs) => sendJson(res, 200, { model_name: model.name, model_version: model.versions[0], id, outputs }),
    (err) => sendError(res, err),
  );
}
