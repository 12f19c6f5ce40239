/**
 * What an identity may do: from where (source-address rules), which models (private models only
 * when granted) and which operations (inference, metadata, backend admin paths).
 */
import { echo, MGError } from '../core/errors.ts';
import type { Identity } from '../core/request.ts';
import type { AppOperation, ModelSnapshot, Snapshot } from '../core/snapshot.ts';
import { SourceRules } from './firewall.ts';

/** Anonymous callers (auth: none) may infer and read metadata, never administer a backend. */
const ANONYMOUS_OPERATIONS: readonly AppOperation[] = ['infer', 'metadata'];

export class Policy {
  private readonly gatewaySources: SourceRules | undefined;
  private readonly appSources = new Map<string, SourceRules>();

  constructor(private readonly snapshot: Snapshot) {
    this.gatewaySources = snapshot.gateway.sources ? new SourceRules(snapshot.gateway.sources) : undefined;
    for (const app of Object.values(snapshot.apps)) if (app.sources) this.appSources.set(app.name, new SourceRules(app.sources));
  }

  /** The box-wide firewall, checked before anything else is read. */
  checkSource(address: string | undefined): void {
    if (this.gatewaySources && !this.gatewaySources.permits(address)) {
      throw new MGError('MG_FORBIDDEN', 'source address not allowed');
    }
  }

  canSee(identity: Identity, model: ModelSnapshot): boolean {
    if (model.visibility === 'public') return true;
    if (identity.app === undefined) return false;
    return this.snapshot.apps[identity.app]?.models.includes(model.name) === true;
  }

  /**
   * The model a call may use: 403 for a source the app may not call from, 404 for an unknown model,
   * 403 for a private model the app was not granted or an operation it may not perform.
   */
  authorize(identity: Identity, modelName: string, operation: AppOperation, address: string | undefined): ModelSnapshot {
    const app = identity.app === undefined ? undefined : this.snapshot.apps[identity.app];
    if (identity.app !== undefined && this.appSources.get(identity.app)?.permits(address) === false) {
      throw new MGError('MG_FORBIDDEN', `app "${identity.app}" may not call from this source address`);
    }
    const model = Object.hasOwn(this.snapshot.models, modelName) ? this.snapshot.models[modelName] : undefined;
    if (!model) throw new MGError('MG_MODEL_NOT_FOUND', `model ${echo(modelName)} is not configured`);
    if (!this.canSee(identity, model)) {
      throw new MGError('MG_FORBIDDEN', `app "${identity.app ?? '(anonymous)'}" is not granted private model ${echo(modelName)}`);
    }
    const allowed = app?.operations ?? ANONYMOUS_OPERATIONS;
    if (!allowed.includes(operation)) {
      throw new MGError('MG_FORBIDDEN', `app "${identity.app ?? '(anonymous)'}" may not perform ${operation} operations`);
    }
    return model;
  }

  visibleModels(identity: Identity): ModelSnapshot[] {
    return Object.values(this.snapshot.models).filter((m) => this.canSee(identity, m));
  }
}
