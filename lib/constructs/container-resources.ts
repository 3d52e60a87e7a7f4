import { Size } from 'cdk8s';
import { ContainerResources, Cpu } from 'cdk8s-plus-28';
import { cpuMillis, requireKnownKeys, sizeInBytes, sizeToQuantity, ValidationError } from './validation';

/** Requests and limits of one container, validated and resolved. */
export interface ResolvedResources {
  readonly cpuRequest: string;
  /** No CPU limit by default: CFS throttling stalls Redis and Sentinel and causes false failovers. */
  readonly cpuLimit?: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  readonly memoryLimitBytes: number;
}

export interface ResourceDefaults {
  readonly cpuRequest: Cpu;
  readonly memoryRequest: Size;
  readonly memoryLimit: Size;
}

/** Smallest memory limit of a container and why, checked before request against limit. */
export interface MemoryFloor {
  readonly bytes: number;
  readonly reason: string;
}

export function resolveResources(field: string, given: ContainerResources | undefined, defaults: ResourceDefaults,
  floor?: MemoryFloor): ResolvedResources {
  requireKnownKeys(field, given, ['cpu', 'memory']);
  requireKnownKeys(`${field}.cpu`, given?.cpu, ['request', 'limit']);
  requireKnownKeys(`${field}.memory`, given?.memory, ['request', 'limit']);
  const cpuRequest = given?.cpu?.request ?? defaults.cpuRequest;
  const cpuLimit = given?.cpu?.limit;
  const memoryRequest = given?.memory?.request ?? defaults.memoryRequest;
  const memoryLimit = given?.memory?.limit ?? defaults.memoryLimit;

  // The limit first: a limit too small to run is the real problem, whatever the request.
  const limitBytes = sizeInBytes(`${field}.memory.limit`, memoryLimit);
  if (floor && limitBytes < floor.bytes) {
    throw new ValidationError(`${field}.memory.limit`, memoryLimit,
      `must be at least ${sizeToQuantity(Size.kibibytes(floor.bytes / 1024))} (${floor.reason}); raise the limit`);
  }
  const requestBytes = sizeInBytes(`${field}.memory.request`, memoryRequest);
  if (requestBytes > limitBytes) {
    throw new ValidationError(`${field}.memory.request`, memoryRequest,
      `must not exceed ${field}.memory.limit (${sizeToQuantity(memoryLimit)}); lower the request or raise the limit`);
  }
  const cpuRequestMillis = cpuMillis(`${field}.cpu.request`, cpuRequest);
  if (cpuLimit !== undefined && cpuRequestMillis > cpuMillis(`${field}.cpu.limit`, cpuLimit)) {
    throw new ValidationError(`${field}.cpu.request`, cpuRequest,
      `must not exceed ${field}.cpu.limit (${cpuLimit.amount}); lower the request or raise the limit`);
  }
  return {
    cpuRequest: cpuRequest.amount,
    cpuLimit: cpuLimit?.amount,
    memoryRequest: sizeToQuantity(memoryRequest),
    memoryLimit: sizeToQuantity(memoryLimit),
    memoryLimitBytes: limitBytes,
  };
}
