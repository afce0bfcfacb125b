/**
 * What local clients (anonymous ones: the owner's tools, and with
 * broker.anonymous: any every LAN device) may do with topics (issue 10,
 * finding 4 and "Also"). Peers are ruled by the mesh policy; the node itself
 * publishes in-process and is never asked.
 *
 * Fixed rules, that no configuration can open:
 * - mesh topics `<prefix>/<any>/mesh/...` are the peers' alone: a local client
 *   can neither publish there (it would be taken for that node) nor read them
 *   (a wide subscription like `#` gets everything else, mesh messages withheld);
 * - other nodes' namespaces `<prefix>/<other id>/...` are written only by those
 *   nodes (over their authenticated links), never by a local client.
 * Defaults, that broker.acl can change (its first matching rule decides):
 * - the node's own namespace `<prefix>/<own id>/...` is the node's: local
 *   clients may publish only its commands (`cmd/...`, the apiary CLI uses
 *   them), not its retained state, info, decisions or replies;
 * - the node's Home Assistant discovery configs (`<discovery>/+/apiary_<own id>/...`)
 *   are the node's too;
 * - every other topic is open, as on a plain broker.
 * Every refusal is counted: `broker.rejected.publish-<why>`,
 * `broker.rejected.subscribe-<why>`, and per message withheld at delivery
 * `broker.withheld.<why>`.
 */
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';

export interface TopicAclRule {
  readonly action: 'allow' | 'deny';
  readonly access: 'publish' | 'subscribe' | 'all';
  /** An MQTT topic filter (+ and # wildcards); `{prefix}` and `{nodeId}` stand for bus.topicPrefix and this node's id. */
  readonly topic: string;
  /** Client ids the rule is for; omitted = every local client. */
  readonly clients?: readonly string[] | undefined;
}

export interface LocalTopicRulesOptions {
  prefix: string;
  nodeId: string;
  /** homeAssistant.discoveryPrefix. */
  discoveryPrefix: string;
  acl: readonly TopicAclRule[];
  counters: Counters;
}

/** The rules for a node's broker, from its config (broker.acl, bus.topicPrefix, homeAssistant.discoveryPrefix). */
export function localTopicRulesFor(config: Pick<ApiaryConfig, 'broker' | 'bus' | 'homeAssistant'>, nodeId: string, counters: Counters): LocalTopicRules {
  return new LocalTopicRules({ prefix: config.bus.topicPrefix, nodeId, discoveryPrefix: config.homeAssistant.discoveryPrefix, acl: config.broker.acl, counters });
}

type Access = 'publish' | 'subscribe';
interface CompiledRule {
  readonly allow: boolean;
  readonly access: TopicAclRule['access'];
  readonly levels: readonly string[];
  readonly clients: ReadonlySet<string> | undefined;
}

export class LocalTopicRules {
  private readonly rules: readonly CompiledRule[];

  constructor(private readonly options: LocalTopicRulesOptions) {
    const expand = (topic: string) => topic.replaceAll('{prefix}', options.prefix).replaceAll('{nodeId}', options.nodeId);
    this.rules = options.acl.map((rule) => ({
      allow: rule.action === 'allow',
      access: rule.access,
      levels: expand(rule.topic).split('/'),
      clients: rule.clients ? new Set(rule.clients) : undefined,
    }));
  }

  /** A PUBLISH (or a will) from local client `clientId`. */
  mayPublish(clientId: string, topic: string): boolean {
    const levels = topic.split('/');
    const fixed = this.fixedRefusal(levels);
    const verdict = fixed ?? this.aclVerdict(clientId, 'publish', (rule) => matches(rule, levels)) ?? this.defaultPublish(levels);
    if (verdict === true) return true;
    this.options.counters.increment(`broker.rejected.publish-${verdict === false ? 'acl' : verdict}`);
    return false;
  }

  /**
   * A SUBSCRIBE filter: refused only when everything it can match is refused
   * (a filter inside the mesh subtree, or inside a deny rule); a wider filter
   * is granted and what it may not read is withheld at delivery (mayRead).
   */
  maySubscribe(clientId: string, filter: string): boolean {
    const levels = filter.split('/');
    const { prefix } = this.options;
    const insideMesh = levels[0] === prefix && levels[2] === 'mesh';
    const verdict = insideMesh ? 'mesh' : this.aclVerdict(clientId, 'subscribe', (rule) => covers(rule.levels, levels)) ?? true;
    if (verdict === true) return true;
    this.options.counters.increment(`broker.rejected.subscribe-${verdict === false ? 'acl' : verdict}`);
    return false;
  }

  /** A message about to be delivered to local client `clientId` (retained ones included). */
  mayRead(clientId: string, topic: string): boolean {
    const levels = topic.split('/');
    const verdict = this.isMesh(levels) ? 'mesh' : this.aclVerdict(clientId, 'subscribe', (rule) => matches(rule, levels)) ?? true;
    if (verdict === true) return true;
    this.options.counters.increment(`broker.withheld.${verdict === false ? 'acl' : verdict}`);
    return false;
  }

  private isMesh(levels: readonly string[]): boolean {
    return levels[0] === this.options.prefix && levels[2] === 'mesh';
  }

  private fixedRefusal(levels: readonly string[]): 'mesh' | 'foreign-namespace' | undefined {
    if (this.isMesh(levels)) return 'mesh';
    if (levels[0] === this.options.prefix && levels.length > 1 && levels[1] !== this.options.nodeId) return 'foreign-namespace';
    return undefined;
  }

  /** The first rule for this client, access and topic: true (allow), false (deny), or undefined (none matched). */
  private aclVerdict(clientId: string, access: Access, applies: (rule: CompiledRule) => boolean): boolean | undefined {
    for (const rule of this.rules) {
      if (rule.access !== 'all' && rule.access !== access) continue;
      if (rule.clients && !rule.clients.has(clientId)) continue;
      if (applies(rule)) return rule.allow;
    }
    return undefined;
  }

  private defaultPublish(levels: readonly string[]): true | 'own-namespace' {
    const { prefix, nodeId, discoveryPrefix } = this.options;
    if (levels[0] === prefix && levels[1] === nodeId) return levels[2] === 'cmd' && levels.length > 3 ? true : 'own-namespace';
    if (levels[0] === discoveryPrefix && levels[2] === `apiary_${nodeId}`) return 'own-namespace';
    return true;
  }
}

/** MQTT 3.1.1 §4.7: does filter `rule` match topic name `topic`? (`#` also matches the parent level.) */
function matches(rule: CompiledRule, topic: readonly string[]): boolean {
  const filter = rule.levels;
  // [MQTT-4.7.2-1]: wildcards at the first level do not match topics starting with '$'.
  if ((filter[0] === '#' || filter[0] === '+') && topic[0]?.startsWith('$')) return false;
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '#') return true;
    if (i >= topic.length) return false;
    if (filter[i] !== '+' && filter[i] !== topic[i]) return false;
  }
  return filter.length === topic.length;
}

/** True when every topic that `filter` matches is also matched by `pattern` (both topic filters). */
export function covers(pattern: readonly string[], filter: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '#') return true;
    const f = filter[i];
    if (f === undefined || f === '#') return false;
    if (p === '+') continue;
    if (f === '+' || f !== p) return false;
  }
  return filter.length === pattern.length;
}
