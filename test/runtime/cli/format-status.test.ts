/** `apiary status` shows the broker's guard at a glance: refusals by kind, beside the full counters. */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../../runtime/cli/format-status.js';

describe('formatStatus', () => {
  it('sums the broker\'s refusals by kind in one line, and lists every counter', () => {
    const text = formatStatus({
      broker: { url: 'mqtt://127.0.0.1:1883', clients: 2, connections: 3 },
      counters: {
        'broker.rejected.connections-per-address': 4, 'broker.rejected.connect-oversized': 1, 'broker.rejected.publish': 2,
        'broker.rejected.publish-mesh': 2, 'broker.rejected.retained-client': 1, 'broker.withheld.mesh': 5, 'broker.restored.announcements': 1,
      },
    });
    expect(text).toContain('Broker: mqtt://127.0.0.1:1883, 2 client(s), 3 socket(s)');
    expect(text).toContain('Broker guard: refused connections 5, refused publishes 2, over budget 1, withheld 5, announcements restored 1');
    expect(text).toMatch(/broker\.rejected\.publish-mesh\s+2/);
  });

  it('shows no guard line when nothing was refused', () => {
    expect(formatStatus({ broker: { url: 'mqtt://127.0.0.1:1883', clients: 0 }, counters: { 'bus.published': 3 } })).not.toContain('Broker guard');
  });

  it('names the application and its extensions, says which failed and why, and that an application without models runs none', () => {
    const text = formatStatus({
      app: 'sensor-node',
      extensions: { 'dew-point': { state: 'running' }, uplink: { state: 'failed', error: 'APIARY_BUS_CONNECT_FAILED: refused' } },
      models: { dir: '/d/models', loaded: [], refused: [], updates: [] },
      latest: { readings: { dew_point_margin: { value: 10.59, unit: '°C', t: 0 }, temperature: { value: 35.5, unit: '°C', t: 0 } } },
    });
    expect(text).toContain('Application sensor-node, extensions: dew-point, uplink (failed)');
    expect(text).toContain('  uplink failed: APIARY_BUS_CONNECT_FAILED: refused');
    expect(text).toContain('Models: none (the sensor-node application runs no model)');
    expect(text).not.toContain('Last model outputs');
    // Columns line up however long a channel name is.
    const columns = text.split('\n').filter((l) => l.includes('°C')).map((l) => l.indexOf('°C'));
    expect(new Set(columns).size).toBe(1);
  });

  it('says so when the device is disconnected, and nothing when it is connected', () => {
    expect(formatStatus({ device: 'firmata', deviceState: 'disconnected' })).toContain('Device DISCONNECTED: its board does not answer');
    expect(formatStatus({ device: 'firmata', deviceState: 'connected' })).not.toContain('DISCONNECTED');
  });

  it('shows the supervised Node-RED in one line, with why it stopped restarting', () => {
    expect(formatStatus({ flows: { state: 'running', pid: 42, restarts: 1, crashes: 1, url: 'http://127.0.0.1:1880/' } }))
      .toContain('Node-RED: running (pid 42), editor http://127.0.0.1:1880/, 1 restart(s), 1 crash(es)');
    expect(formatStatus({ flows: { state: 'crashed', pid: null, restarts: 4, crashes: 5, url: 'http://127.0.0.1:1880/', lastError: 'restart loop' } }))
      .toContain('Node-RED: crashed, editor http://127.0.0.1:1880/, 4 restart(s), 5 crash(es); restart loop');
    expect(formatStatus({})).not.toContain('Node-RED');
  });

  it('shows the MCP endpoint with its auth mode when it is on', () => {
    expect(formatStatus({ mcp: { http: { url: 'https://0.0.0.0:8765/mcp', auth: 'owner-token', tls: true, revokedTokens: 2 } } }))
      .toContain('MCP endpoint: https://0.0.0.0:8765/mcp, owner tokens over TLS (2 revoked; writes with a write token)');
    expect(formatStatus({ mcp: { http: { url: 'http://127.0.0.1:8765/mcp', auth: 'none', tls: false, revokedTokens: 0 } } }))
      .toContain('MCP endpoint: http://127.0.0.1:8765/mcp, no token: loopback, read-only');
    expect(formatStatus({})).not.toContain('MCP endpoint');
  });

  it('shows payments in one line when the extension runs', () => {
    expect(formatStatus({ payments: { channels: 2, peers: 1, owedToUs: { credit: 5 }, weOwe: {}, forkedPayers: 0 } })).toContain('Payments: 1 peer(s); owed to us 5 credit; we owe nothing');
    expect(formatStatus({})).not.toContain('Payments');
  });

  it('shows the keep rules of a sparse node, what it kept and passed on, its relay cache, and each sparse feed', () => {
    const mesh = {
      owner: 'o', peers: [],
      feeds: [{ origin: 'aaaaaaaaaaaa', seq: 40, firstSeq: 3, bytes: 2048, droppedByRetention: 0, sparse: true as const, kept: 4 }, { origin: 'bbbbbbbbbbbb', seq: 7, firstSeq: 1, bytes: 900, droppedByRetention: 0 }],
      replication: { rules: [{ types: ['alert*'] }], kept: 4, relayed: 36, expired: 0, relay: { bytes: 1024, maxBytes: 4 * 1024 ** 2, entries: 3, dropped: 2 } },
    };
    const text = formatStatus({ mesh });
    expect(text).toContain('replication: keeps [{"types":["alert*"]}]; 4 entries kept, 36 passed on only, 0 expired; relay cache 1.0 KiB of 4.0 MiB (3 entries), 2 dropped');
    expect(text).toContain('aaaaaaaaaaaa  sparse: 4 kept of seq ..40');
    expect(text).toContain('bbbbbbbbbbbb  seq 1..7');
    expect(formatStatus({ mesh: { ...mesh, replication: { ...mesh.replication, rules: 'everything' } } })).not.toContain('replication:');
  });
});
