import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { type ModelServer } from '../../src/demo/index.ts';
import { call, until, useServers } from './helpers.ts';

const { agent, start } = useServers();

interface Event {
  readonly at: number;
  readonly data: string;
}

/** Reads an SSE stream, stamping each `data:` event with its arrival time (ms since t0). */
async function readEvents(server: ModelServer, body: unknown, t0: number, onEvent?: (e: Event) => boolean): Promise<{ contentType: unknown; events: Event[] }> {
  const res = await request(`${server.url}/v1/chat/completions`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const events: Event[] = [];
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += (chunk as Buffer).toString('utf8');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      assert.ok(raw.startsWith('data: '), raw);
      const e = { at: performance.now() - t0, data: raw.slice(6) };
      events.push(e);
      if (onEvent && !onEvent(e)) {
        res.body.destroy();
        return { contentType: res.headers['content-type'], events };
      }
    }
  }
  return { contentType: res.headers['content-type'], events };
}

const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: 'llm', messages: [{ role: 'user', content: 'hello edge box' }], ...extra });

describe('OpenAI-compatible routes', () => {
  test('lists the models', async () => {
    const server = await start({ models: ['llm', 'emb'] });
    const list = (await call(agent, `${server.url}/v1/models`)).json as { object: string; data: { id: string; object: string }[] };
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((m) => [m.id, m.object]), [['llm', 'model'], ['emb', 'model']]);
    assert.equal((await call(agent, `${server.url}/v1/models/emb`)).status, 200);
    assert.equal((await call(agent, `${server.url}/v1/models/none`)).status, 404);
  });

  test('chat completion: usage, max_tokens cap and time proportional to tokens', async () => {
    const server = await start({ models: ['llm'], tokenMs: 10 });
    const t0 = performance.now();
    const a = await call(agent, `${server.url}/v1/chat/completions`, { body: chat({ max_tokens: 5 }), headers: { 'x-request-id': 'r-1' } });
    const elapsed = performance.now() - t0;
    assert.equal(a.status, 200, a.text);
    const body = a.json as { id: string; object: string; model: string; choices: { message: { role: string; content: string }; finish_reason: string }[]; usage: Record<string, number> };
    assert.equal(body.object, 'chat.completion');
    assert.equal(body.id, 'chatcmpl-r-1');
    assert.equal(body.model, 'llm');
    assert.equal(body.choices[0]?.message.role, 'assistant');
    assert.equal(body.choices[0]?.message.content.split(' ').length, 5);
    assert.equal(body.choices[0]?.finish_reason, 'length');
    assert.deepEqual(body.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
    assert.ok(elapsed >= 48, `elapsed ${elapsed}`);
    const full = (await call(agent, `${server.url}/v1/chat/completions`, { body: chat() })).json as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    assert.deepEqual([full.usage.completion_tokens, full.choices[0]?.finish_reason], [16, 'stop']);
    const eos = (await call(agent, `${server.url}/v1/chat/completions`, { body: chat({ max_completion_tokens: 40, ignore_eos: true }) })).json as { usage: { completion_tokens: number } };
    assert.equal(eos.usage.completion_tokens, 40);
    assert.equal(server.stats().models['llm']?.served, 3);
  });

  test('streaming sends one event per token as it is generated, then [DONE]', async () => {
    const server = await start({ models: ['llm'], tokenMs: 20 });
    const t0 = performance.now();
    const { contentType, events } = await readEvents(server, chat({ stream: true, max_tokens: 6, stream_options: { include_usage: true } }), t0);
    const total = performance.now() - t0;
    assert.match(String(contentType), /^text\/event-stream/);
    assert.equal(events.at(-1)?.data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as { object: string; choices: { delta: { content?: string; role?: string }; finish_reason: string | null }[]; usage?: { completion_tokens: number } });
    const tokens = chunks.filter((c) => c.choices[0]?.delta.content !== undefined);
    assert.equal(tokens.length, 6);
    assert.equal(tokens[0]?.choices[0]?.delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'length');
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 6);
    // Tokens arrive spread over time, not in one buffered burst at the end.
    const first = events[0]!.at;
    const lastToken = events[5]!.at;
    assert.ok(first < total - 60, `first chunk at ${first.toFixed(1)}ms of ${total.toFixed(1)}ms`);
    assert.ok(lastToken - first >= 80, `tokens spread over ${(lastToken - first).toFixed(1)}ms`);
    assert.ok(total >= 115, `total ${total}`);
  });

  test('a generation holds an accelerator slot for its whole duration', async () => {
    const server = await start({ models: ['llm'], slots: 1, tokenMs: 10 });
    const t0 = performance.now();
    const [a, b] = await Promise.all([
      readEvents(server, chat({ stream: true, max_tokens: 5 }), t0),
      readEvents(server, chat({ stream: true, max_tokens: 5 }), t0),
    ]);
    const [early, late] = a.events[0]!.at < b.events[0]!.at ? [a, b] : [b, a];
    assert.ok(late.events[0]!.at >= early.events.at(-1)!.at - 1, 'the second generation starts after the first ends');
    assert.equal(server.stats().peakConcurrency, 1);
    assert.ok((server.stats().models['llm']?.busyMs ?? 0) >= 95);
  });

  test('prefill takes the model service time', async () => {
    const server = await start({ models: [{ name: 'llm', serviceTime: 50 }], tokenMs: 0 });
    const t0 = performance.now();
    const a = await call(agent, `${server.url}/v1/completions`, { body: { model: 'llm', prompt: 'x', max_tokens: 1 } });
    assert.ok(performance.now() - t0 >= 48);
    const body = a.json as { object: string; choices: { text: string }[] };
    assert.equal(body.object, 'text_completion');
    assert.equal(body.choices[0]?.text.split(' ').length, 1);
  });

  test('a client that disconnects mid-stream stops the generation and frees the slot', async () => {
    const server = await start({ models: ['llm'], slots: 1, tokenMs: 5 });
    let seen = 0;
    await readEvents(server, chat({ stream: true, max_tokens: 10_000 }), performance.now(), () => ++seen < 3);
    await until(() => server.stats().inService === 0);
    assert.equal(server.stats().models['llm']?.cancelled, 1);
    assert.equal((await call(agent, `${server.url}/v1/chat/completions`, { body: chat({ max_tokens: 1 }) })).status, 200);
  });

  test('completions stream as text_completion chunks', async () => {
    const server = await start({ models: ['llm'], tokenMs: 1 });
    const res = await request(`${server.url}/v1/completions`, { dispatcher: agent, method: 'POST', body: JSON.stringify({ model: 'llm', prompt: ['a', 'b'], stream: true, max_tokens: 3 }) });
    const text = await res.body.text();
    const events = text.trim().split('\n\n');
    assert.equal(events.length, 5); // 3 tokens, finish, [DONE]
    assert.equal((JSON.parse(events[0]!.slice(6)) as { object: string }).object, 'text_completion');
  });

  test('embeddings are deterministic unit vectors; base64 works', async () => {
    const server = await start({ models: ['emb'] });
    const get = async (extra: Record<string, unknown>): Promise<{ data: { index: number; embedding: number[] | string }[]; usage: { prompt_tokens: number } }> =>
      (await call(agent, `${server.url}/v1/embeddings`, { body: { model: 'emb', ...extra } })).json as never;
    const a = await get({ input: ['hello', 'world'], dimensions: 8 });
    const b = await get({ input: 'hello', dimensions: 8 });
    assert.equal(a.data.length, 2);
    assert.deepEqual(a.data[0]?.embedding, b.data[0]?.embedding);
    const v = a.data[0]!.embedding as number[];
    assert.equal(v.length, 8);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
    assert.equal(a.usage.prompt_tokens, 4);
    const packed = await get({ input: 'hello', dimensions: 8, encoding_format: 'base64' });
    const decoded = new Float32Array(Uint8Array.from(Buffer.from(packed.data[0]!.embedding as string, 'base64')).buffer);
    assert.deepEqual(Array.from(decoded), v);
    const standard = await get({ input: [[1, 2, 3]] });
    assert.equal((standard.data[0]!.embedding as number[]).length, 16);
    assert.equal(server.stats().models['emb']?.served, 4);
  });

  test('OpenAI-style errors: 404 unknown model, 400 bad input', async () => {
    const server = await start({ models: ['llm'] });
    const unknown = await call(agent, `${server.url}/v1/chat/completions`, { body: { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(unknown.status, 404);
    assert.deepEqual((unknown.json as { error: { code: string; type: string } }).error.code, 'model_not_found');
    const bad: [string, unknown, RegExp][] = [
      ['chat/completions', { model: 'llm' }, /messages/],
      ['chat/completions', { messages: [{ role: 'user', content: 'x' }] }, /model is required/],
      ['chat/completions', chat({ max_tokens: 0 }), /max_tokens/],
      ['chat/completions', chat({ n: 2 }), /n=1/],
      ['chat/completions', chat({ stream: 'yes' }), /stream/],
      ['completions', { model: 'llm', prompt: { text: 'x' } }, /prompt/],
      ['embeddings', { model: 'llm', input: [] }, /input/],
      ['embeddings', { model: 'llm', input: 'x', encoding_format: 'hex' }, /encoding_format/],
    ];
    for (const [path, body, message] of bad) {
      const a = await call(agent, `${server.url}/v1/${path}`, { body });
      assert.equal(a.status, 400, `${path} ${JSON.stringify(body)}`);
      const error = (a.json as { error: { message: string; type: string } }).error;
      assert.equal(error.type, 'invalid_request_error');
      assert.match(error.message, message);
    }
    assert.equal((await call(agent, `${server.url}/v1/chat/completions`)).status, 405);
    assert.equal((await call(agent, `${server.url}/v1/nothing`)).status, 404);
  });
});
