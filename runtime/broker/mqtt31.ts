/**
 * MQTT 3.1 clients (protocol name MQIsdp, level 3) beside 3.1.1 ones.
 *
 * aedes parses every client with mqtt-packet, which applies 3.1.1's
 * reserved-bit rules whatever the level: a 3.1 client that re-sends a
 * SUBSCRIBE with DUP set, as 3.1 (§3.8 of the 3.1 spec) has it do, is cut.
 * The wire guard skips the 3.1.1-only rules for a 3.1 client (mqtt-guard.ts)
 * and this rewrites what 3.1 leaves unused into 3.1.1's form, so aedes
 * accepts it. mosquitto treats 3.1 clients the same way: it checks none of
 * these bits for them.
 */
const CONNECT = 1, PUBLISH = 3, PUBREL = 6, SUBSCRIBE = 8, UNSUBSCRIBE = 10;

/** Bytes of the fixed header: the type byte and the Remaining Length (§2.2.3), whose last byte has the top bit clear. */
export function fixedHeaderLength(packet: Buffer): number {
  let i = 1;
  while (i < packet.length && ((packet[i] as number) & 0x80) !== 0) i += 1;
  return i + 1;
}

/** A checked packet from a 3.1 client, in the form 3.1.1 gives it (the same bytes when nothing differs). */
export function asMqtt311(packet: Buffer): Buffer {
  const first = packet[0] as number;
  const type = first >> 4;
  let header: number;
  // DUP on QoS 0 means nothing in 3.1; 3.1.1 forbids it [MQTT-3.3.1-2].
  if (type === PUBLISH) header = (first & 0x06) === 0 ? first & ~0x08 : first;
  // 3.1 sends PUBREL/SUBSCRIBE/UNSUBSCRIBE as QoS 1, with DUP when re-sent; 3.1.1 fixes their flags to 0010 and the rest to 0000 [MQTT-2.2.2-1].
  else header = (type << 4) | (type === PUBREL || type === SUBSCRIBE || type === UNSUBSCRIBE ? 0x02 : 0x00);
  let flagsAt = -1;
  let flags = 0;
  if (type === CONNECT) {
    const start = fixedHeaderLength(packet);
    flagsAt = start + 2 + packet.readUInt16BE(start) + 1; // after the protocol name and level (§3.1.2.1, §3.1.2.2)
    const sent = packet[flagsAt] as number;
    flags = sent & ~0x01; // reserved in 3.1.1 [MQTT-3.1.2-3], unused in 3.1
    if ((flags & 0x04) === 0) flags &= ~0x38; // will QoS and retain without a will [MQTT-3.1.2-13] [MQTT-3.1.2-15]
    if (flags === sent) flagsAt = -1;
  }
  if (header === first && flagsAt < 0) return packet;
  const copy = Buffer.from(packet); // never write into a buffer the socket handed us
  copy[0] = header;
  if (flagsAt >= 0) copy[flagsAt] = flags;
  return copy;
}
