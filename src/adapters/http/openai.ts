/** OpenAI-compatible calls: the model comes from the body, and the cost from the prompt and max_tokens. */
import { MGError } from '../../core/errors.ts';

export interface OpenAiBody {
  readonly model: string;
  readonly doc: Record<string, unknown>;
  /** Estimated tokens (prompt + completion budget): the call's cost in compute fairness. */
  readonly tokens: number;
}

const DEFAULT_MAX_TOKENS = 256;

function textLength(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + textLength(x), 0);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return textLength(o['content'] ?? o['text'] ?? '');
  }
  return 0;
}

export function decodeOpenAi(doc: unknown, path: string): OpenAiBody {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new MGError('MG_BAD_REQUEST', 'body must be a JSON object');
  const o = doc as Record<string, unknown>;
  if (typeof o['model'] !== 'string' || o['model'] === '') throw new MGError('MG_BAD_REQUEST', 'body needs a "model" string');
  const prompt = path.startsWith('/v1/chat') ? textLength(o['messages']) : path.startsWith('/v1/embeddings') ? textLength(o['input']) : textLength(o['prompt']);
  const promptTokens = Math.ceil(prompt / 4);
  const maxTokens = path.startsWith('/v1/embeddings') ? 0 : typeof o['max_tokens'] === 'number' ? o['max_tokens'] : DEFAULT_MAX_TOKENS;
  return { model: o['model'], doc: o, tokens: Math.max(1, promptTokens + maxTokens) };
}
