/**
 * OpenAI-compatible routes (`/v1/...`) with simulated generation, in every mode and for every
 * configured model. A generation holds one accelerator slot for its whole duration:
 *
 *   slot granted ─ prefill (the model's service time) ─ token 1 ─ token 2 ─ … ─ token n ─ release
 *                                                      └──────── tokenMs apart ────────┘
 *
 * With `stream: true` every token is written as its own SSE event when it is generated; a client
 * that disconnects stops the generation and frees the slot (as LLM servers do).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveOnAccelerator, type ServerContext } from './context.ts';
import { badRequest, HttpError, isRecord, notFound, onClientGone, readJson, sendJson } from './http.ts';
import type { DemoModel } from './models.ts';
import { hashString, sampleServiceTime, seededRandom } from './service-time.ts';

const WORDS = ('the model on this edge box answers every request in turn while the accelerator is shared by weight ' +
  'and priority so that safety cameras are served first and batch jobs wait their turn').split(' ');

type Kind = 'chat' | 'completion';

interface Generation {
  readonly kind: Kind;
  readonly model: DemoModel;
  readonly promptTokens: number;
  readonly tokens: number;
  readonly finishReason: 'stop' | 'length';
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly seed: number;
}

function sendError(res: ServerResponse, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  const message = err instanceof Error ? err.message : String(err);
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = err instanceof HttpError ? (err.code ?? null) : 'internal_error';
  sendJson(res, status, { error: { message, type, param: null, code } });
}

/** Rough OpenAI rule of thumb: one token per four characters. */
const countTokens = (text: string): number => (text.length === 0 ? 0 : Math.ceil(text.length / 4));

function optionalInt(body: Record<string, unknown>, key: string, min: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw badRequest(`${key} must be an integer ≥ ${min}`);
  return v;
}

function findModel(ctx: ServerContext, body: Record<string, unknown>): DemoModel {
  const name = body['model'];
  if (typeof name !== 'string' || name === '') throw badRequest('model is required');
  const model = ctx.models.get(name);
  if (!model) throw notFound(`The model \`${name}\` does not exist`, 'model_not_found');
  return model;
}

function promptText(kind: Kind, body: Record<string, unknown>): { text: string; tokens: number } {
  if (kind === 'chat') {
    const messages = body['messages'];
    if (!Array.isArray(messages) || messages.length === 0) throw badRequest('messages must be a non-empty array');
    let text = '';
    messages.forEach((m, i) => {
      if (!isRecord(m) || typeof m['role'] !== 'string') throw badRequest(`messages[${i}] must have a role`);
      const content = m['content'];
      if (typeof content === 'string') text += content + '\n';
      else if (Array.isArray(content)) {
        for (const part of content) if (isRecord(part) && typeof part['text'] === 'string') text += part['text'] + '\n';
      } else if (content !== null && content !== undefined) throw badRequest(`messages[${i}].content must be a string or an array of parts`);
    });
    return { text, tokens: countTokens(text) };
  }
  const prompt = body['prompt'];
  if (typeof prompt === 'string') return { text: prompt, tokens: countTokens(prompt) };
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string')) {
    const text = prompt.join('\n');
    return { text, tokens: countTokens(text) };
  }
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'number')) return { text: prompt.join(','), tokens: prompt.length };
  throw badRequest('prompt must be a string, an array of strings, or an array of token ids');
}

function parseGeneration(ctx: ServerContext, kind: Kind, body: unknown): Generation {
  if (!isRecord(body)) throw badRequest('request body must be a JSON object');
  const model = findModel(ctx, body);
  const prompt = promptText(kind, body);
  if ((optionalInt(body, 'n', 1) ?? 1) !== 1) throw badRequest('only n=1 is supported');
  const max = optionalInt(body, 'max_completion_tokens', 1) ?? optionalInt(body, 'max_tokens', 1);
  // vLLM's extensions: min_tokens and ignore_eos make the length controllable for tests.
  const natural = body['ignore_eos'] === true && max !== undefined ? max : Math.max(ctx.completionTokens, optionalInt(body, 'min_tokens', 0) ?? 0);
  const tokens = Math.min(natural, max ?? natural);
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw badRequest('stream must be a boolean');
  const options = body['stream_options'];
  return {
    kind,
    model,
    promptTokens: prompt.tokens,
    tokens,
    finishReason: tokens < natural || body['ignore_eos'] === true ? 'length' : 'stop',
    stream: stream === true,
    includeUsage: isRecord(options) && options['include_usage'] === true,
    seed: hashString(prompt.text),
  };
}

const word = (g: Generation, i: number): string => (i === 0 ? '' : ' ') + (WORDS[(g.seed + i) % WORDS.length] ?? '');

function usage(g: Generation, completionTokens: number): Record<string, number> {
  return { prompt_tokens: g.promptTokens, completion_tokens: completionTokens, total_tokens: g.promptTokens + completionTokens };
}

function answer(g: Generation, id: string, created: number): Record<string, unknown> {
  let text = '';
  for (let i = 0; i < g.tokens; i++) text += word(g, i);
  const choice = g.kind === 'chat'
    ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: g.finishReason, logprobs: null }
    : { index: 0, text, finish_reason: g.finishReason, logprobs: null };
  const object = g.kind === 'chat' ? 'chat.completion' : 'text_completion';
  return { id, object, created, model: g.model.name, choices: [choice], usage: usage(g, g.tokens) };
}

function chunk(g: Generation, id: string, created: number, i: number | 'final'): Record<string, unknown> {
  const finish = i === 'final' ? g.finishReason : null;
  const choice = g.kind === 'chat'
    ? { index: 0, delta: i === 'final' ? {} : i === 0 ? { role: 'assistant', content: word(g, 0) } : { content: word(g, i) }, finish_reason: finish, logprobs: null }
    : { index: 0, text: i === 'final' ? '' : word(g, i), finish_reason: finish, logprobs: null };
  const object = g.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  return { id, object, created, model: g.model.name, choices: [choice] };
}

const sse = (res: ServerResponse, data: unknown): boolean => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

function generate(ctx: ServerContext, res: ServerResponse, g: Generation, id: string): void {
  const created = Math.floor(Date.now() / 1000);
  let granted = false;
  let detach: () => void = () => undefined;
  const ticket = ctx.accelerator.acquire(g.model.name, (slot) => {
    granted = true;
    detach();
    const start = performance.now() + sampleServiceTime(g.model.serviceTime, g.model.random);
    const due = (k: number): number => start + k * ctx.tokenMs;
    let sent = 0;
    let cancelTimer: () => void = () => undefined;
    const stopOnDisconnect = onClientGone(res, () => {
      cancelTimer();
      ctx.accelerator.release(slot, 'cancelled');
    });
    const complete = (): void => {
      stopOnDisconnect();
      ctx.accelerator.release(slot, 'served');
      if (!g.stream) return sendJson(res, 200, answer(g, id, created));
      sse(res, chunk(g, id, created, 'final'));
      if (g.includeUsage) sse(res, { id, object: g.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: g.model.name, choices: [], usage: usage(g, g.tokens) });
      sse(res, '[DONE]');
      res.end();
    };
    if (!g.stream) {
      cancelTimer = ctx.timers.after(due(g.tokens) - performance.now(), complete);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    // Each wake-up writes every token that is due (normally one): timer lateness does not accumulate.
    const tick = (): void => {
      const now = performance.now() + 1;
      while (sent < g.tokens && due(sent + 1) <= now) sse(res, chunk(g, id, created, sent++));
      if (sent < g.tokens) cancelTimer = ctx.timers.after(due(sent + 1) - performance.now(), tick);
      else complete();
    };
    cancelTimer = ctx.timers.after(due(1) - performance.now(), tick);
  });
  if (!granted) detach = onClientGone(res, () => ticket.cancel());
}

function embeddingInputs(input: unknown): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    if (input.every((v) => typeof v === 'string')) return input;
    if (input.every((v) => typeof v === 'number')) return [input];
    if (input.every((v) => Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number'))) return input as number[][];
  }
  throw badRequest('input must be a string, an array of strings, or token id arrays (non-empty)');
}

/** A deterministic unit vector per input text: the same text always embeds to the same point. */
function embed(text: string, dims: number): Float32Array {
  const random = seededRandom(hashString(text));
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = random() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] = (v[i] ?? 0) / norm;
  return v;
}

function embeddings(ctx: ServerContext, res: ServerResponse, body: unknown): void {
  if (!isRecord(body)) throw badRequest('request body must be a JSON object');
  const model = findModel(ctx, body);
  const inputs = embeddingInputs(body['input']);
  const dims = optionalInt(body, 'dimensions', 1) ?? 16;
  if (dims > 4096) throw badRequest('dimensions must be ≤ 4096');
  const format = body['encoding_format'] ?? 'float';
  if (format !== 'float' && format !== 'base64') throw badRequest('encoding_format must be float or base64');
  const promptTokens = inputs.reduce((n, i) => n + (typeof i === 'string' ? countTokens(i) : i.length), 0);
  serveOnAccelerator(
    ctx,
    model,
    res,
    () =>
      inputs.map((input, index) => {
        const v = embed(typeof input === 'string' ? input : input.join(','), dims);
        const embedding = format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
        return { object: 'embedding', index, embedding };
      }),
    (data) => sendJson(res, 200, { object: 'list', data, model: model.name, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } }),
    (err) => sendError(res, err),
  );
}

function modelCard(ctx: ServerContext, model: DemoModel): Record<string, unknown> {
  return { id: model.name, object: 'model', created: 0, owned_by: ctx.serverName };
}

/** `parts` is the path after `/v1`. */
export async function handleOpenAI(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, parts: readonly string[], requestId: string | undefined): Promise<void> {
  try {
    const [head, arg, extra] = parts;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const need = (m: string): void => {
      if (method !== m) throw new HttpError(405, `${req.method ?? '?'} not allowed here; use ${m}`, 'method_not_allowed');
    };
    if (head === 'models' && extra === undefined) {
      need('GET');
      if (arg === undefined || arg === '') {
        sendJson(res, 200, { object: 'list', data: [...ctx.models.values()].map((m) => modelCard(ctx, m)) });
        return;
      }
      const model = ctx.models.get(arg);
      if (!model) throw notFound(`The model \`${arg}\` does not exist`, 'model_not_found');
      sendJson(res, 200, modelCard(ctx, model));
      return;
    }
    const kind: Kind | 'embeddings' | undefined =
      head === 'chat' && arg === 'completions' && extra === undefined ? 'chat'
        : head === 'completions' && arg === undefined ? 'completion'
          : head === 'embeddings' && arg === undefined ? 'embeddings'
            : undefined;
    if (kind === undefined) throw notFound(`no route ${req.url ?? ''}`);
    need('POST');
    const body = await readJson(req);
    if (kind === 'embeddings') return embeddings(ctx, res, body);
    const prefix = kind === 'chat' ? 'chatcmpl-' : 'cmpl-';
    generate(ctx, res, parseGeneration(ctx, kind, body), prefix + (requestId ?? ctx.nextId()));
  } catch (err) {
    sendError(res, err);
  }
}
