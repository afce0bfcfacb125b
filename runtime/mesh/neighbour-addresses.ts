/**
 * Where to reach a neighbour's broker, and where neighbours should reach
 * ours: the listener this node names in its hello, and the URL (and pinned
 * certificate) a node dials back to a peer that linked to it unasked.
 */
import { X509Certificate } from 'node:crypto';
import type { EmbeddedBroker } from '../broker/embedded-broker.js';
import type { PinnedCertificate } from './peer-link.js';

export interface AdvertisedListener {
  port: number;
  tls: boolean;
  /** The TLS listener's certificate (PEM), for a dialling peer to pin. */
  tlsCert?: string;
}

/** The listener to name in hello: the TLS one (broker.tls) when the plain one is on loopback only, else the plain one. */
export function advertisedListener(broker: Pick<EmbeddedBroker, 'url' | 'port' | 'tlsPort' | 'tlsCertificate'> | undefined): AdvertisedListener {
  if (!broker) return { port: 0, tls: false };
  const loopbackOnly = /^mqtts?:\/\/(127\.|\[::1\]|localhost)/.test(broker.url);
  const cert = broker.tlsCertificate;
  if (broker.tlsPort > 0 && loopbackOnly) return { port: broker.tlsPort, tls: true, ...(cert ? { tlsCert: cert } : {}) };
  return { port: broker.port, tls: broker.url.startsWith('mqtts:') };
}

/**
 * The URL to dial back a peer at the address its link came from, and the
 * certificate to pin when it named one. The certificate came in a hello on
 * the peer's own authenticated link, so pinning it is as safe as that link.
 * Undefined `pin` with `badCertificate` when the named certificate is not one.
 */
export function dialBackTarget(address: string, hello: { port: number; tls?: boolean; tlsCert?: string }): { url: string; pin?: PinnedCertificate; badCertificate?: true } {
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `${hello.tls ? 'mqtts' : 'mqtt'}://${host}:${hello.port}`;
  if (!hello.tls || !hello.tlsCert) return { url };
  try {
    return { url, pin: { pem: hello.tlsCert, fingerprint256: new X509Certificate(hello.tlsCert).fingerprint256 } };
  } catch {
    return { url, badCertificate: true };
  }
}
