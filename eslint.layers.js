/**
 * Which folder of src/ may import which: the layers along a request's data flow, lowest first.
 * docs/architecture.md shows this table (a test keeps the two equal); eslint.config.js turns it
 * into no-restricted-imports rules, so an import against the flow fails lint, and
 * test/architecture/layers.test.ts checks dynamic imports and cycles too.
 */
export const LAYERS = {
  core: [],
  net: ['core'],
  config: ['core'],
  security: ['core', 'config'],
  grpc: ['core', 'config'],
  qos: ['core', 'config'],
  dispatch: ['core', 'config', 'security', 'grpc'],
  broker: ['core', 'config', 'security', 'grpc', 'dispatch'],
  link: ['core', 'net', 'config', 'security', 'grpc', 'dispatch', 'broker'],
  pipeline: ['core', 'config', 'security', 'broker'],
  observability: ['core', 'net', 'config', 'security', 'grpc', 'dispatch', 'broker', 'link', 'pipeline'],
  adapters: ['core', 'net', 'config', 'security', 'grpc', 'link', 'pipeline'],
  dashboard: ['core', 'observability'],
  admin: ['core', 'net', 'config', 'security', 'broker', 'observability', 'dashboard'],
  controller: ['core', 'net', 'config', 'security', 'admin'],
  k8s: ['core', 'config', 'controller'],
  demo: ['core', 'net', 'grpc'],
  compose: ['core', 'net', 'config', 'security', 'grpc', 'qos', 'dispatch', 'broker', 'link', 'pipeline', 'observability', 'adapters', 'dashboard', 'admin', 'controller'],
  cli: ['core', 'net', 'config', 'security', 'grpc', 'qos', 'dispatch', 'broker', 'link', 'pipeline', 'observability', 'adapters', 'dashboard', 'admin', 'controller', 'k8s', 'demo', 'compose'],
};

/** Folders whose sub-folders are independent of each other (a new protocol adds one and touches no other). */
export const INDEPENDENT = ['adapters'];

const DEEPEST = 4;

/**
 * Flat-config entries: for each folder and each depth below it, the imports that leave src/<folder>
 * for a folder it may not use. Matching on the import text is exact because the number of `../`
 * that reaches src/ is known at each depth.
 */
export function layerRules(layers = LAYERS) {
  const folders = Object.keys(layers);
  const out = [];
  for (const [folder, allowed] of Object.entries(layers)) {
    const forbidden = folders.filter((f) => f !== folder && !allowed.includes(f));
    for (let depth = 0; depth < DEEPEST; depth++) {
      const up = '\\.\\./'.repeat(depth + 1);
      const patterns = [];
      if (forbidden.length > 0) {
        patterns.push({
          regex: `^${up}(${forbidden.join('|')})/`,
          message: `${allowed.length ? `src/${folder} may import only ${allowed.join(', ')}` : `src/${folder} imports nothing else in src`} (the layers in docs/architecture.md): this import runs against the data flow`,
        });
      }
      if (INDEPENDENT.includes(folder) && depth === 1) {
        patterns.push({ regex: `^\\.\\./[^./][^/]*/`, message: `each folder of src/${folder} stands alone: share code through a lower layer (core, net, pipeline), not another ${folder} folder` });
      }
      if (patterns.length === 0) continue;
      out.push({ files: [`src/${folder}/${'*/'.repeat(depth)}*.ts`], rules: { 'no-restricted-imports': ['error', { patterns }] } });
    }
  }
  return out;
}
