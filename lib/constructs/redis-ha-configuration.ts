import { createHash } from 'crypto';
import { k8s } from 'cdk8s-plus-28';
import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { loadScripts } from '../pod/scripts';
import { commonLabels } from './names';
import { REDIS_HA_PROP_KEYS, RedisHaProps, RedisHaSettings } from './redis-ha-settings';
import { requireKnownKeys, ValidationError } from './validation';
import { FILES } from '../pod/contract';
import { redisAclUsersFile, sentinelAclUsersFile } from '../pod/acl';

export interface RedisHaConfigurationProps extends RedisHaProps {
  /**
   * Settings resolved already (`RedisHaSettings.resolve(props)`); then no other prop may be given.
   * @default - resolved from the other props
   */
  readonly settings?: RedisHaSettings;
}

/**
 * What every pod of one instance shares: the ConfigMaps `<name>-config` (redis.conf),
 * `<name>-sentinel-config` (sentinel.conf) and `<name>-scripts` (the pod scripts), and
 * the ServiceAccount `<name>` unless an existing one is named. Give one instance of it
 * to `RedisMaster`, `RedisReplicaSet` and `SentinelQuorum` when composing them by hand.
 */
export class RedisHaConfiguration extends Construct {
  public readonly settings: RedisHaSettings;
  public readonly redisConfigMap: k8s.KubeConfigMap;
  public readonly sentinelConfigMap: k8s.KubeConfigMap;
  public readonly scriptsConfigMap: k8s.KubeConfigMap;
  /** The cert-manager Certificate `<name>-tls`, emitted when tls.issuer is given. */
  public readonly certificate?: ApiObject;
  /** The ServiceAccount created, if serviceAccountName was not given. */
  public readonly serviceAccount?: k8s.KubeServiceAccount;
  /** Hash of redis.conf and the scripts the Redis pods run; their pod template carries it. */
  public readonly redisConfigHash: string;
  /** Hash of sentinel.conf and the scripts the Sentinel pods run. */
  public readonly sentinelConfigHash: string;

  constructor(scope: Construct, id: string, props: RedisHaConfigurationProps = {}) {
    super(scope, id);
    this.settings = settingsOf('', props, ['settings']);
    const s = this.settings;
    claimPart(this, 'RedisHaConfiguration', s.name);
    const scripts = loadScripts();
    const metadata = (name: string) => ({ name, labels: commonLabels(s.name, s.labels) });
    const redisAclUsers = redisAclUsersFile(s.metrics, s.proxy);
    const sentinelAclUsers = sentinelAclUsersFile(s.metrics, s.proxy);

    this.redisConfigMap = new k8s.KubeConfigMap(this, 'RedisConfig', {
      metadata: metadata(s.names.redisConfig),
      data: { [FILES.redisConf]: s.redisConf, [FILES.aclUsers]: redisAclUsers },
    });
    this.sentinelConfigMap = new k8s.KubeConfigMap(this, 'SentinelConfig', {
      metadata: metadata(s.names.sentinelConfig),
      data: { [FILES.sentinelConf]: s.sentinelConf, [FILES.aclUsers]: sentinelAclUsers },
    });
    this.scriptsConfigMap = new k8s.KubeConfigMap(this, 'Scripts', {
      metadata: metadata(s.names.scripts),
      data: scripts,
    });
    if (s.createServiceAccount) {
      // The pods talk to no Kubernetes API: an identity of their own, with no token.
      this.serviceAccount = new k8s.KubeServiceAccount(this, 'ServiceAccount', {
        metadata: metadata(s.serviceAccountName),
        automountServiceAccountToken: false,
      });
    }
    if (s.tls?.issuer) {
      const namespace = s.tls.namespace ?? Chart.of(this).namespace;
      if (namespace === undefined) {
        throw new ValidationError('tls.namespace', undefined,
          'is needed for the Certificate\'s fully qualified DNS names (<pod>.<service>.<namespace>.svc): set tls.namespace, or give the chart a namespace');
      }
      const spec: CertificateSpec = {
        secretName: s.tls.secretName,
        issuerRef: { name: s.tls.issuer.name, kind: s.tls.issuer.kind!, group: s.tls.issuer.group! },
        dnsNames: s.tlsDnsNames(namespace),
        // Redis and Sentinel present this certificate as servers and, to each other, as clients.
        usages: ['digital signature', 'server auth', 'client auth'],
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      };
      // cert-manager's Certificate CRD is not imported into crds/: a plain ApiObject with
      // the small typed spec above (cert-manager.io/v1, the fields used here only).
      this.certificate = new ApiObject(this, 'Certificate', {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: metadata(s.names.tlsCertificate),
        spec,
      });
    }
    // Each tier's pods carry the hash of what they use, so a change to one tier's
    // configuration or scripts rolls only that tier.
    this.redisConfigHash = configHash('redis', s.redisConf + redisAclUsers, scripts);
    this.sentinelConfigHash = configHash('sentinel', s.sentinelConf + sentinelAclUsers, scripts);
  }
}

/** The part of a cert-manager `cert-manager.io/v1` Certificate's spec the constructs write. */
interface CertificateSpec {
  readonly secretName: string;
  readonly issuerRef: { readonly name: string; readonly kind: string; readonly group: string };
  readonly dnsNames: string[];
  readonly usages: string[];
  readonly privateKey: { readonly algorithm: 'ECDSA' | 'RSA'; readonly size: number; readonly rotationPolicy: 'Always' | 'Never' };
}

/** Props of a part (RedisMaster, RedisReplicaSet, SentinelQuorum, RedisDisruptionBudget, RedisNetworkPolicies). */
export interface RedisHaPartProps extends RedisHaProps {
  /**
   * Settings resolved already (`RedisHaSettings.resolve(props)`); then no other system prop may be given.
   * @default - the configuration's settings, else resolved from the other props
   */
  readonly settings?: RedisHaSettings;
  /**
   * The ConfigMaps (and ServiceAccount) the pods use. Pass the same one to every part of
   * an instance composed by hand; a part without one creates its own, and a second configuration
   * of the same instance in one chart is refused (its objects would have the same names).
   * @default - created by this part, from its settings
   */
  readonly configuration?: RedisHaConfiguration;
}

/**
 * The settings of a part: `settings`, else the configuration's, else resolved from the
 * props. With settings or a configuration, the other system props must be absent: they
 * were resolved (and validated) already, so a second value could only contradict them.
 */
export function settingsOf(field: string, props: RedisHaPartProps, extraKeys: readonly string[] = ['settings', 'configuration']): RedisHaSettings {
  requireKnownKeys(field, props, [...REDIS_HA_PROP_KEYS, ...extraKeys]);
  const given = props.settings ?? props.configuration?.settings;
  if (given === undefined) {
    const { settings: _s, configuration: _c, ...system } = props;
    return RedisHaSettings.resolve(system);
  }
  if (props.settings && props.configuration && props.configuration.settings !== props.settings) {
    throw new ValidationError('configuration', props.configuration.node.path,
      'must be made from the same settings as the part (pass the same RedisHaSettings, or only the configuration)');
  }
  const extra = Object.keys(props).filter((k) => k !== 'settings' && k !== 'configuration');
  if (extra.length > 0) {
    throw new ValidationError(extra[0], (props as { [k: string]: unknown })[extra[0]],
      `cannot be given together with ${props.settings ? 'settings' : 'configuration'} (their settings are resolved already); give it to RedisHaSettings.resolve() instead`);
  }
  return given;
}

/** Per chart: which construct made which part of which instance. */
const claims = new WeakMap<Chart, Map<string, string>>();

/**
 * Records that `scope` makes `part` (a construct class) of instance `instance` in its chart,
 * and refuses a second one: both would write objects with the same names, and the later
 * would silently replace the earlier when applied. That happens with two instances left
 * at the same `name`, or with parts composed by hand that each create their own
 * configuration.
 */
export function claimPart(scope: Construct, part: string, instance: string): void {
  const chart = Chart.of(scope);
  const made = claims.get(chart) ?? new Map<string, string>();
  claims.set(chart, made);
  const key = `${part}/${instance}`;
  const earlier = made.get(key);
  if (earlier !== undefined) {
    throw new ValidationError('name', instance,
      `already has a ${part} in chart ${chart.node.id} (at ${earlier}; a second one at ${scope.node.path}), and both would write `
      + 'objects with the same names: give each RedisSentinelHA its own name prop, and when composing parts by hand '
      + 'pass one RedisHaConfiguration to all of them (configuration prop)');
  }
  made.set(key, scope.node.path);
}

/**
 * The scripts a tier's pods run: common.sh and every script named for the tier
 * (`redis-*.sh` or `sentinel-*.sh`), so a new script joins its tier's hash by its name.
 */
export function tierScripts(tier: 'redis' | 'sentinel', scripts: { [name: string]: string }): { [name: string]: string } {
  return Object.fromEntries(Object.entries(scripts).filter(([name]) => name === 'common.sh' || name.startsWith(`${tier}-`)));
}

/** Hash of a tier's configuration file and the scripts its pods run. */
export function configHash(tier: 'redis' | 'sentinel', conf: string, scripts: { [name: string]: string }): string {
  const used = Object.entries(tierScripts(tier, scripts)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = conf + used.map(([name, content]) => `${name}\n${content}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
