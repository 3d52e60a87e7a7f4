// How the simulator stands in for the redis_exporter image: Debian's binary at the image's
// entrypoint, not the host's Redis binaries (the repository name contains "redis").
import { describe, expect, it } from 'vitest';
import { existsSync } from 'fs';
import { EXPORTER_BINARY, EXPORTER_ENTRYPOINT, imageRunnable, isExporterImage, isRedisImage } from '../../harness/sim/manifests';

describe('the simulator and the exporter image', () => {
  it('recognises redis_exporter images (any registry, tag or digest) and does not take them for Redis', () => {
    for (const image of ['oliver006/redis_exporter:v1.45.0', 'registry.local:5000/mirror/redis_exporter:v1.45.0',
      `oliver006/redis_exporter:v1.45.0@sha256:${'a'.repeat(64)}`]) {
      expect(isExporterImage(image), image).toBe(true);
      expect(isRedisImage(image), image).toBe(false);
    }
    for (const image of ['redis:7.2.7-bookworm', 'bitnami/redis-sentinel:7.2', 'valkey/valkey:8']) {
      expect(isExporterImage(image), image).toBe(false);
      expect(isRedisImage(image), image).toBe(true);
    }
    expect(EXPORTER_ENTRYPOINT).toBe('/redis_exporter');
  });

  it('runs it only where Debian\'s prometheus-redis-exporter is installed; other exporters never', () => {
    expect(imageRunnable('oliver006/redis_exporter:v1.45.0')).toBe(existsSync(EXPORTER_BINARY));
    expect(imageRunnable('prom/node-exporter:v1.8.0')).toBe(false);
  });
});
