// Types of eslint.layers.js for the TypeScript code that reads it (test/architecture/layers.test.ts).
export declare const LAYERS: Readonly<Record<string, readonly string[]>>;
export declare const INDEPENDENT: readonly string[];
export declare function layerRules(layers?: Readonly<Record<string, readonly string[]>>): Record<string, unknown>[];
