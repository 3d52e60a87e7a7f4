// Everything, for this repository's own synth command, tests and benchmarks: the
// package's public API is lib/index.ts; the rest is internal and may change.
export * from './index';
export * from './constructs/names';
export * from './constructs/validation';
export * from './constructs/container-resources';
export * from './constructs/redis-ha-settings';
export * from './constructs/redis-ha-configuration';
export * from './constructs/sentinel-quorum';
export * from './pod/config-files';
export * from './output/environments';
export * from './output/kustomize';
export * from './output/write-files';
export * from './output/profile-values';
export * from './pod/contract';
export * from './constructs/policy-exemptions';
