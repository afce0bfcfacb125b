/**
 * Messages on their way to a client, retained ones sent in answer to a
 * SUBSCRIBE above all, as MQTT 3.1.1 has them and aedes 1.2 does not
 * (applied in aedes's authorizeForward hook, which sees every PUBLISH on its
 * way to a client: live, retained, and re-sent from a persistent session):
 *
 * - At the QoS of the subscription when that is lower [MQTT-3.8.4-6] (§3.8.4,
 *   §3.3.5: the highest QoS granted to the client's subscriptions that match
 *   the topic). aedes lowers it only when the filter is the topic itself, so
 *   a QoS 1 retained message reached a QoS 0 wildcard subscription at QoS 1,
 *   and a QoS 2 message a QoS 1 wildcard subscription at QoS 2.
 * - RETAIN 0 on everything but the retained messages sent for a SUBSCRIBE
 *   [MQTT-3.3.1-9]; aedes kept the publisher's flag on queued messages.
 * - Once. aedes handles the packets of one read concurrently: a retained
 *   PUBLISH followed by a SUBSCRIBE to its topic reached the client live (the
 *   subscription was in place before the message was routed) and then again
 *   from the retained store. mosquitto, handling packets in order, sends it
 *   once, as a retained message. A retained message for a SUBSCRIBE that the
 *   client already got live since that SUBSCRIBE is not sent again (counted
 *   as `broker.deduplicated`). A live message is never held back: the other
 *   order (a message stored while the retained lookup ran) is ruled out by
 *   the lookup taking the store as it is when the subscription starts
 *   (patches/aedes-1.2.0.patch).
 *
 * The same message is recognised by its payload buffer: aedes stores the
 * retained message and routes it live with the very same Buffer object
 * (aedes.js `publish` → persistence `storeRetained` → mqemitter), while a new
 * PUBLISH, even with equal bytes, has a buffer of its own. The sets are weak:
 * they hold nothing alive.
 */
import type { AedesPublishPacket, Client } from 'aedes';

/** The messages one client was sent live since its last SUBSCRIBE, by payload buffer. */
type LiveSinceSubscribe = WeakSet<Buffer>;

/** The part of aedes's Client (untyped in aedes's definitions) that holds its subscriptions: filter → granted QoS. */
interface ClientSubscriptions {
  subscriptions?: Record<string, { qos?: number } | undefined>;
}

export class RetainedDelivery {
  private readonly windows = new WeakMap<Client, LiveSinceSubscribe>();

  constructor(private readonly onDuplicate: () => void = () => undefined) {}

  /** The client subscribes (aedes's authorizeSubscribe, before it looks up retained messages). */
  subscribing(client: Client): void {
    this.windows.set(client, new WeakSet());
  }

  /**
   * A PUBLISH on its way to `client`: the packet to send (QoS and RETAIN as
   * above), or null for a retained copy of a message it already got live. The packet is
   * changed in place: aedes makes one per client and delivery, and its re-send
   * path (lib/handlers/connect.js emptyQueue) writes the packet it passed in,
   * not the one returned.
   */
  forward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const live = this.windows.get(client);
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : undefined;
    // aedes marks a retained message sent for a SUBSCRIBE by retain = true and no broker id (lib/handlers/subscribe.js).
    const answersSubscribe = packet.retain && !packet.brokerId;
    if (live && payload) {
      if (!answersSubscribe) live.add(payload);
      else if (live.has(payload)) {
        this.onDuplicate();
        return null;
      }
    }
    if (!answersSubscribe) packet.retain = false;
    if (packet.qos > 0) {
      const granted = grantedQos(client, packet.topic);
      if (granted < packet.qos) packet.qos = granted;
    }
    return packet;
  }
}

/** The highest QoS granted to the client's subscriptions that match `topic` (§3.3.5); 0 if none does. */
function grantedQos(client: Client, topic: string): 0 | 1 | 2 {
  const subscriptions = (client as unknown as ClientSubscriptions).subscriptions ?? {};
  let best = 0;
  for (const [filter, subscription] of Object.entries(subscriptions)) {
    if (topicMatches(filter, topic)) best = Math.max(best, subscription?.qos ?? 0);
  }
  return best >= 2 ? 2 : best === 1 ? 1 : 0;
}

/**
 * Whether a topic filter matches a topic name (§4.7): `+` is one whole level,
 * empty ones included [MQTT-4.7.1-3]; `#` is the rest, the parent level
 * included [MQTT-4.7.1-2]; a wildcard first never matches a `$` topic [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
