/**
 * What an identity may do: which models it may call (private models only when granted) and how
 * fast (a token bucket per app, whose Retry-After is the true time until the next token).
 */
import { MGError } from '../core/errors.ts';
import type { Identity } from '../core/request.ts';
import type { ModelSnapshot, Snapshot } from '../core/snapshot.ts';

class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Takes a token, or returns the ms until one is available. */
  take(): number {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) / this.rate) * 1000;
  }
}

export class Policy {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly snapshot: Snapshot) {
    for (const app of Object.values(snapshot.apps)) {
      if (app.rateLimit) this.buckets.set(app.name, new TokenBucket(app.rateLimit.requestsPerSecond, app.rateLimit.burst));
    }
  }

  canSee(identity: Identity, model: ModelSnapshot): boolean {
    if (model.visibility === 'public') return true;
    if (identity.app === undefined) return false;
    return this.snapshot.apps[identity.app]?.models.includes(model.name) === true;
  }

  /** The model a call may use; 404 for unknown, 403 for a private model the app was not granted. */
  authorize(identity: Identity, modelName: string): ModelSnapshot {
    const model = Object.hasOwn(this.snapshot.models, modelName) ? this.snapshot.models[modelName] : undefined;
    if (!model) throw new MGError('MG_MODEL_NOT_FOUND', `model "${modelName}" is not configured`);
    if (!this.canSee(identity, model)) {
      throw new MGError('MG_FORBIDDEN', `app "${identity.app ?? '(anonymous)'}" is not granted private model "${modelName}"`);
    }
    return model;
  }

  /** Counts one request against the app's rate limit. */
  admitRate(identity: Identity): void {
    if (identity.app === undefined) return;
    const wait = this.buckets.get(identity.app)?.take() ?? 0;
    if (wait > 0) throw new MGError('MG_RATE_LIMITED', `app "${identity.app}" is over its rate limit`, { retryAfterMs: wait });
  }

  visibleModels(identity: Identity): ModelSnapshot[] {
    return Object.values(this.snapshot.models).filter((m) => this.canSee(identity, m));
  }
}
