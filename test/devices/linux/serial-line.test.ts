/**
 * A serial line sensor through serialport's SerialPortMock (its mock
 * binding): key=value and regex lines, garbled and absurd lines counted and
 * never published, a silent sensor counted, and a port that closes
 * (unplugged) or does not exist reopened when it returns.
 */
import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../../runtime/clock.js';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { LinuxDevice } from '../../../devices/linux/linux-device.js';
import type { Reading } from '../../../devices/device.js';
import { waitFor } from '../../support/fake-board.js';

const PATH = '/dev/ttyFAKE0';
let device: LinuxDevice | undefined;
afterEach(async () => { await device?.close(); device = undefined; SerialPortMock.binding.reset(); });

function open(sensor: Record<string, unknown>) {
  const linux = parseConfig({ device: { kind: 'linux', linux: { sensors: [{ driver: 'serial-line', port: PATH, interval: '300ms', ...sensor }] } } }).device.linux;
  if (!linux) throw new Error('no linux section');
  const ports: SerialPortMock[] = [];
  device = new LinuxDevice({
    config: linux,
    clock: new ScaledClock(),
    openSerialPort: (path, baudRate) => {
      const port = new SerialPortMock({ path, baudRate, autoOpen: false });
      ports.push(port);
      return Promise.resolve(port);
    },
  });
  const readings: Reading[] = [];
  const warnings: Error[] = [];
  device.on('reading', (r) => readings.push(r));
  device.on('warning', (w) => warnings.push(w));
  const send = (text: string) => {
    const port = ports.at(-1);
    if (!port?.isOpen) throw new Error('the port is not open');
    port.port?.emitData(Buffer.from(text));
  };
  return { device, readings, warnings, ports, send };
}

describe('serial line sensor', () => {
  it('publishes the key from key=value lines with its unit, and ignores lines without it', async () => {
    SerialPortMock.binding.createPort(PATH, { echo: false, record: false });
    const { device, readings, ports, send } = open({ channel: 'co2', unit: 'ppm', precision: 0 });
    expect(device.channels).toEqual([{ name: 'co2', unit: 'ppm', label: 'co2', precision: 0 }]);
    await device.open();
    await waitFor(() => ports.at(-1)?.isOpen === true, 'the port to open');
    send('boot v1.2\r\nt=21.5 co2=412 h=40\r\n');
    await waitFor(() => readings.length > 0, 'a reading');
    expect(readings[0]).toMatchObject({ channel: 'co2', value: 412, unit: 'ppm' });
  });

  it('takes the first group of a pattern; counts garbled, absurd and missing lines without publishing them', async () => {
    SerialPortMock.binding.createPort(PATH, { echo: false, record: false });
    const { device, readings, warnings, ports, send } = open({ channel: 'co2', pattern: '^CO2 (\\S+) ppm$', range: [0, 10000], unit: 'ppm' });
    await device.open();
    await waitFor(() => ports.at(-1)?.isOpen === true, 'the port to open');
    send('CO2 4x1 ppm\n');
    await waitFor(() => (device.stats()['invalid.co2'] ?? 0) >= 1, 'a garbled line counted');
    send('CO2 65535 ppm\n');
    await waitFor(() => (device.stats()['invalid.co2'] ?? 0) >= 2, 'an absurd value counted');
    await waitFor(() => (device.stats()['missing.co2'] ?? 0) >= 1, 'a silent interval counted');
    expect(readings).toHaveLength(0);
    expect(warnings.some((w) => /65535 ppm is outside 0..10000 ppm/.test(w.message))).toBe(true);
    send('CO2 780 ppm\n');
    await waitFor(() => readings.length > 0, 'a good line');
    expect(readings[0]?.value).toBe(780);
  });

  it('reopens a port that closed (unplugged) or did not exist, and resumes', async () => {
    const { device, readings, ports, send } = open({ key: 'w', channel: 'weight_raw' });
    await device.open(); // no such port yet: counted, retried
    await waitFor(() => (device.stats()['missing.weight_raw'] ?? 0) >= 1, 'the missing port counted');
    SerialPortMock.binding.createPort(PATH, { echo: false, record: false });
    await waitFor(() => ports.at(-1)?.isOpen === true, 'the port to open once it exists', 20_000);
    send('w=12.5\n');
    await waitFor(() => readings.length > 0, 'a reading');
    const first = ports.at(-1);
    await new Promise<void>((resolve) => first?.close(() => resolve())); // the port goes away under the sensor
    await waitFor(() => ports.length >= 2 && ports.at(-1)?.isOpen === true, 'the port reopened', 20_000);
    send('w=13\n');
    await waitFor(() => readings.at(-1)?.value === 13, 'readings after the reopen');
  });
});
