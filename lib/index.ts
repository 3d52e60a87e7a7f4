// The library's public API: the constructs an app composes, their props and the
// resolved settings. Helpers (validation, rendering, the kustomize output) are internal:
// import them from their modules.
export { RedisHaObjectNames } from './constructs/names';
export { WorkloadImages } from './constructs/policy-exemptions';
export { ValidationError } from './constructs/validation';
export { ResolvedResources } from './constructs/container-resources';
export { MaxmemoryPolicy } from './pod/config-files';
export { RedisHaProps, RedisHaSettings, RedisTlsProps, ResolvedTls, SpreadConstraint, TlsIssuerRef } from './constructs/redis-ha-settings';
export { RedisHaConfiguration, RedisHaConfigurationProps, RedisHaPartProps } from './constructs/redis-ha-configuration';
export { RedisNode } from './constructs/redis-node';
export { RedisMaster, RedisMasterProps } from './constructs/redis-master';
export { RedisReplicaSet, RedisReplicaSetProps } from './constructs/redis-replica-set';
export { SentinelQuorum, SentinelQuorumProps } from './constructs/sentinel-quorum';
export { RedisDisruptionBudget, RedisDisruptionBudgetProps } from './constructs/redis-disruption-budget';
export { RedisNetworkPolicies, RedisNetworkPoliciesProps } from './constructs/redis-network-policies';
export { RedisProxy, RedisProxyProps } from './constructs/redis-proxy';
export { RedisSentinelHA, RedisSentinelHAProps } from './constructs/redis-sentinel-ha';
export { RedisHaChart, RedisHaChartProps } from './output/environments';
