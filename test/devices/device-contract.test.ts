/**
 * The shared contract every Device implementation must meet. Each
 * implementation that can run without hardware is listed in `implementations`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ScaledClock } from '../../runtime/clock.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import { createDevice } from '../../devices/create-device.js';
import type { AudioFrame, Device, Reading } from '../../devices/device.js';
import { FakeBoard } from '../support/fake-board.js';

// The linux device reads a fake board: a DS18B20, an SHT3x through hwmon, an HX711 through IIO, a fake arecord.
const board = await FakeBoard.create();
await board.ds18b20('28-0316a2795bff', 34.5);
await board.hwmon(2, 'sht3x', { temp1_input: 34000, humidity1_input: 58500 });
await board.iio(0, 'hx711', { in_voltage0_raw: 0x800000 + 800_000 });
const arecord = await board.fakeArecord();
afterAll(() => board.remove());

const implementations: { name: string; make: () => Device }[] = [
  {
    name: 'simulated-beehive (johnny-five over SimulatedBeehiveIO)',
    make: () => {
      const config = parseConfig({
        device: {
          kind: 'simulated-beehive',
          simulation: { speed: 600, preSwarm: '1m', swarm: '1m' },
          sensors: { temperature: { interval: '30s' }, humidity: { interval: '30s' }, weight: { interval: '30s' }, sound: { interval: '10s' } },
        },
      });
      return createDevice(config.device, new ScaledClock({ speed: 600 }));
    },
  },
  {
    name: 'linux (DS18B20, SHT3x over hwmon, HX711 over IIO, arecord, on a fake sysfs tree)',
    make: () => {
      const config = parseConfig({
        device: {
          kind: 'linux',
          linux: {
            root: board.root,
            sensors: [
              { driver: 'ds18b20', interval: '100ms' },
              { driver: 'hwmon', name: 'sht3x', quantity: 'humidity', interval: '100ms' },
              { driver: 'hx711-iio', kgPerCount: 0.00005, offsetKg: -2, interval: '100ms', compensation: { channel: 'temperature', kgPerDegree: 0.01 } },
            ],
            audio: { driver: 'alsa', device: 'plughw:1,0', interval: '1s', command: arecord },
          },
        },
      });
      return createDevice(config.device, new ScaledClock());
    },
  },
];

function collect(device: Device, until: (readings: Reading[], frames: AudioFrame[]) => boolean): Promise<{ readings: Reading[]; frames: AudioFrame[] }> {
  const readings: Reading[] = [];
  const frames: AudioFrame[] = [];
  return new Promise((resolve) => {
    const check = () => { if (until(readings, frames)) resolve({ readings, frames }); };
    device.on('reading', (r) => { readings.push(r); check(); });
    device.on('audio', (f) => { frames.push(f); check(); });
  });
}

describe.each(implementations)('Device contract: $name', ({ make }) => {
  it('emits readings for every declared channel, in range, with units and times', async () => {
    const device = make();
    const done = collect(device, (readings) => device.channels.every((c) => readings.filter((r) => r.channel === c.name).length >= 3));
    await device.open();
    const { readings } = await done;
    await device.close();
    expect(device.channels.map((c) => c.name)).toEqual(['temperature', 'humidity', 'weight']);
    for (const channel of device.channels) {
      const mine = readings.filter((r) => r.channel === channel.name);
      expect(mine.every((r) => r.unit === channel.unit && Number.isFinite(r.value) && r.t > 0)).toBe(true);
    }
    const temps = readings.filter((r) => r.channel === 'temperature').map((r) => r.value);
    expect(Math.min(...temps)).toBeGreaterThan(10);
    expect(Math.max(...temps)).toBeLessThan(45);
    const weights = readings.filter((r) => r.channel === 'weight').map((r) => r.value);
    expect(Math.min(...weights)).toBeGreaterThan(30);
  });

  it('stops emitting after close, and can be closed without leaking timers', async () => {
    const device = make();
    await device.open();
    await device.close();
    let after = 0;
    device.on('reading', () => after++);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(after).toBe(0);
  });

  it('delivers audio frames of the declared length', async () => {
    const device = make();
    expect(device.hasAudio).toBe(true);
    const done = collect(device, (_r, frames) => frames.length >= 2);
    await device.open();
    const { frames } = await done;
    await device.close();
    expect(frames[0]?.samples.length).toBe(frames[0]?.sampleRate);
    expect(frames[0]?.samples.every((s) => Number.isFinite(s))).toBe(true);
  });

  it('turns an injected swarm into swarm sound (simulated devices only)', async () => {
    const device = make();
    if (!device.simulation) return;
    await device.open();
    device.simulation.inject('swarm');
    expect(device.simulation.state().sound).toBe('pre-swarm');
    await device.close();
  });
});
