/**
 * ModelGuard's public surface for code that embeds it (package.json `exports`): load and compile a
 * configuration, start a gateway from it, and run the CLI. Everything else in src/ is internal and
 * may change between versions; `import 'modelguard/src/...'` is refused by the package's exports.
 */
export { compileResources, compileSnapshot, ConfigError, formatIssue, loadConfig } from './config/index.ts';
export type { CompileOptions, ConfigIssue, LoadedConfig, LoadOptions } from './config/index.ts';
export { startGateway } from './compose/gateway.ts';
export type { Gateway, GatewayOptions } from './compose/gateway.ts';
export type { Snapshot } from './core/snapshot.ts';
