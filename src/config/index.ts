/** The configuration language: resource schemas, loading with file:line errors, compilation into a Snapshot. */
export { loadConfig, compileResources } from './load.ts';
export type { LoadedConfig, LoadOptions, CompileOptions } from './load.ts';
export { compileSnapshot } from './compile.ts';
export { ConfigError, formatIssue } from './issues.ts';
export type { ConfigIssue } from './issues.ts';
export {
  API_VERSION,
  KINDS,
  DEFAULTS,
  BackendSchema,
  ModelSchema,
  ServiceGroupSchema,
  AppSchema,
  GatewaySchema,
} from './schema.ts';
export type {
  Kind,
  Backend,
  Model,
  ServiceGroup,
  App,
  Gateway,
  Resource,
  BackendInput,
  ModelInput,
  ServiceGroupInput,
  AppInput,
  GatewayInput,
  ResourceInput,
} from './schema.ts';
export { parseSize } from './values.ts';
