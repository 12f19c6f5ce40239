/**
 * Triton's REST extensions beyond inference, governed explicitly: each path below is forwarded to
 * the backend of a model the app may use with the named permission, and refused otherwise (403),
 * never an accidental 404 or an accidental pass. Paths that name a model use it; server-wide paths
 * name the model whose server they go to in the `X-ModelGuard-Model` header.
 *
 * Sources: Triton's docs/protocol/extension_{model_repository,statistics,trace,logging,
 * shared_memory,model_configuration,generate}.md.
 */
import type { Operation } from '../../core/request.ts';
import type { AppOperation } from '../../core/snapshot.ts';

export interface RestExtension {
  /** Extension name, as Triton reports it in server metadata. */
  readonly extension: string;
  /** Path pattern after `/v2`: literal segments, `{model}`, `{version}` (optional `versions/{v}` pair) and `{region}`. */
  readonly path: string;
  readonly methods: readonly ('GET' | 'POST')[];
  readonly permission: AppOperation;
  /** `infer` is scheduled as accelerator work; `metadata` is answered without queueing. */
  readonly op: Operation;
}

/**
 * Every Triton REST extension path ModelGuard knows, and what it takes. One constant so that the
 * HTTP and gRPC surfaces can be kept in step (the gRPC counterparts are the pass-through methods
 * RepositoryIndex, RepositoryModelLoad/Unload, ModelStatistics, TraceSetting, LogSettings,
 * {System,Cuda}SharedMemory{Status,Register,Unregister}, ModelConfig).
 */
export const TRITON_REST_EXTENSIONS: readonly RestExtension[] = [
  { extension: 'model_repository', path: 'repository/index', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'model_repository', path: 'repository/models/{model}/load', methods: ['POST'], permission: 'admin', op: 'infer' },
  { extension: 'model_repository', path: 'repository/models/{model}/unload', methods: ['POST'], permission: 'admin', op: 'infer' },
  { extension: 'statistics', path: 'models/stats', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'statistics', path: 'models/{model}/{version}/stats', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'trace', path: 'trace/setting', methods: ['GET', 'POST'], permission: 'admin', op: 'metadata' },
  { extension: 'trace', path: 'models/{model}/trace/setting', methods: ['GET', 'POST'], permission: 'admin', op: 'metadata' },
  { extension: 'logging', path: 'logging', methods: ['GET', 'POST'], permission: 'admin', op: 'metadata' },
  { extension: 'system_shared_memory', path: 'systemsharedmemory/status', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'system_shared_memory', path: 'systemsharedmemory/region/{region}/status', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'system_shared_memory', path: 'systemsharedmemory/region/{region}/register', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'system_shared_memory', path: 'systemsharedmemory/unregister', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'system_shared_memory', path: 'systemsharedmemory/region/{region}/unregister', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'cuda_shared_memory', path: 'cudasharedmemory/status', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'cuda_shared_memory', path: 'cudasharedmemory/region/{region}/status', methods: ['GET'], permission: 'admin', op: 'metadata' },
  { extension: 'cuda_shared_memory', path: 'cudasharedmemory/region/{region}/register', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'cuda_shared_memory', path: 'cudasharedmemory/unregister', methods: ['POST'], permission: 'admin', op: 'metadata' },
  { extension: 'cuda_shared_memory', path: 'cudasharedmemory/region/{region}/unregister', methods: ['POST'], permission: 'admin', op: 'metadata' },
  // Model configuration is read-only description, like model metadata.
  { extension: 'model_configuration', path: 'models/{model}/{version}/config', methods: ['GET'], permission: 'metadata', op: 'metadata' },
  // Generate (LLMs): inference in Triton's JSON form, scheduled like any inference call.
  { extension: 'generate', path: 'models/{model}/{version}/generate', methods: ['POST'], permission: 'infer', op: 'infer' },
  { extension: 'generate', path: 'models/{model}/{version}/generate_stream', methods: ['POST'], permission: 'infer', op: 'infer' },
];

export interface ExtensionMatch {
  readonly ext: RestExtension;
  /** The model named in the path, or undefined for a server-wide path. */
  readonly model: string | undefined;
  /** The backend path for the model's backend name (query string kept). */
  readonly backendPath: (backendModel: string) => string;
}

/** Matches decoded path segments after `v2` against the table; undefined when none matches. */
export function matchExtension(seg: readonly string[], query: string): ExtensionMatch | undefined {
  for (const ext of TRITON_REST_EXTENSIONS) {
    const pattern = ext.path.split('/');
    let i = 0;
    let model: string | undefined;
    let version: string | undefined;
    const out: ((m: string) => string)[] = [];
    let ok = true;
    for (const p of pattern) {
      const s = seg[i];
      if (p === '{version}') {
        if (s === 'versions' && seg[i + 1]) {
          version = seg[i + 1];
          out.push(() => `versions/${encodeURIComponent(version as string)}`);
          i += 2;
        }
        continue;
      }
      if (s === undefined || s === '') {
        ok = false;
        break;
      }
      if (p === '{model}') {
        model = s;
        out.push((m) => encodeURIComponent(m));
      } else if (p === '{region}') {
        out.push(() => encodeURIComponent(s));
      } else if (p === s) {
        out.push(() => p);
      } else {
        ok = false;
        break;
      }
      i++;
    }
    if (!ok || i !== seg.length) continue;
    return { ext, model, backendPath: (m) => `/v2/${out.map((f) => f(m)).join('/')}${query}` };
  }
  return undefined;
}
