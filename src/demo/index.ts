/** The embedded demo model server: what `modelguard up`, tests and benchmarks use. */
export { startModelServer } from './server.ts';
export type { DemoMode, FaultMode, FaultScope, ModelServer, ModelServerOptions, ModelServerStats, ModelSpec, ReceivedRequest } from './server.ts';
export type { ModelCounters } from './accelerator.ts';
export { formatServiceTime, parseServiceTime } from './service-time.ts';
export type { ServiceTime, ServiceTimeSpec } from './service-time.ts';
export { buildIrisOnnx, defaultCacheDir, IRIS_MODEL_NAME, loadIrisModel, trainIris } from './onnx/iris-model.ts';
export type { IrisModel, IrisResult } from './onnx/iris-model.ts';
export { IRIS_CLASSES } from './iris-data.ts';
export { demoModelCommand, parseListen } from './cli.ts';
