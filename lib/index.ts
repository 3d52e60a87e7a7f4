// The constructs: what a cdk8s app composes.
export * from './constructs/names';
export * from './constructs/validation';
export * from './constructs/container-resources';
export * from './constructs/redis-node';
export * from './constructs/redis-master';
export * from './constructs/redis-replica-set';
export * from './constructs/sentinel-quorum';
export * from './constructs/redis-sentinel-ha';
// What runs in the pods: configuration files and the scripts.
export * from './pod/config-files';
// The output: environment charts, kustomize base and overlays, writing files.
export * from './output/environments';
export * from './output/kustomize';
export * from './output/write-files';
