/**
 * DS18B20 over 1-Wire: the w1_slave parser against the datasheet's checks,
 * and the linux device against a fake sysfs tree: a probe that is unplugged,
 * fails its CRC or reports 85 °C is counted and never published, and is
 * read again when it returns.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isApiaryError, ErrorCodes } from '../../../runtime/errors.js';
import { crc8, parseW1Slave } from '../../../devices/linux/ds18b20.js';
import type { LinuxDevice } from '../../../devices/linux/linux-device.js';
import { SensorFault } from '../../../devices/linux/sysfs.js';
import { FakeBoard, linuxDevice, waitFor, w1Slave } from '../../support/fake-board.js';

const ID = '28-0316a2795bff';

function faultOf(text: string): string {
  try {
    parseW1Slave(text);
  } catch (err) {
    return err instanceof SensorFault ? err.kind : 'other';
  }
  return 'none';
}

describe('parseW1Slave', () => {
  it('reads the kernel documentation example (23.125 °C) and recomputes its CRC', () => {
    expect(crc8([0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10])).toBe(0x57);
    expect(parseW1Slave('72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n')).toBe(23.125);
    expect(parseW1Slave(w1Slave(-10.5))).toBe(-10.5);
  });

  it('refuses a CRC the kernel reports as NO, a scratchpad whose CRC does not match, and a cut-short read', () => {
    expect(faultOf(w1Slave(21, false))).toBe('crc');
    expect(faultOf('72 01 4b 46 7f ff 0e 10 58 : crc=58 YES\n72 01 4b 46 7f ff 0e 10 58 t=23125\n')).toBe('crc');
    expect(faultOf('72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n')).toBe('crc');
    expect(faultOf('')).toBe('crc');
  });

  it('refuses the 85 °C power-on value, an all-zero scratchpad (valid CRC 0) and values outside -55..125 °C', () => {
    expect(faultOf(w1Slave(85))).toBe('invalid');
    expect(faultOf('00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n')).toBe('invalid');
    expect(faultOf(w1Slave(126))).toBe('invalid');
    expect(faultOf(w1Slave(-56))).toBe('invalid');
    expect(parseW1Slave(w1Slave(125))).toBe(125);
  });
});

describe('DS18B20 through the linux device', () => {
  let board: FakeBoard;
  let device: LinuxDevice | undefined;
  beforeEach(async () => { board = await FakeBoard.create(); });
  afterEach(async () => { await device?.close(); await board.remove(); });

  function open(sensor: Record<string, unknown>) {
    const made = linuxDevice(board, [{ driver: 'ds18b20', ...sensor }]);
    device = made.device;
    return made;
  }

  it('publishes the probe, counts an unplugged probe once as a warning, and picks it up again', async () => {
    await board.ds18b20(ID, 34.5);
    const { device, readings, warnings } = open({ id: ID });
    await device.open();
    await waitFor(() => readings.length >= 2, 'two readings');
    expect(readings[0]).toMatchObject({ channel: 'temperature', value: 34.5, unit: '°C' });

    await board.unplug(`sys/bus/w1/devices/${ID}`);
    await waitFor(() => (device.stats()['missing.temperature'] ?? 0) >= 3, 'three missing reads');
    const before = readings.length;
    expect(warnings.filter((w) => isApiaryError(w, ErrorCodes.DEVICE_SENSOR_MISSING))).toHaveLength(1);

    await board.ds18b20(ID, 33);
    await waitFor(() => readings.at(-1)?.value === 33, 'the probe to come back');
    expect(device.stats()['recovered.temperature']).toBe(1);
    expect(readings.slice(before).every((r) => r.value === 33 || r.value === 34.5)).toBe(true);
  });

  it('never publishes a CRC error or a power-on 85 °C, and counts and reports each', async () => {
    await board.ds18b20(ID, 20, { crcOk: false });
    const { device, readings, warnings } = open({});
    await device.open();
    await waitFor(() => (device.stats()['crc.temperature'] ?? 0) >= 2, 'two CRC errors');
    await board.ds18b20(ID, 85);
    await waitFor(() => (device.stats()['invalid.temperature'] ?? 0) >= 2, 'two power-on values');
    expect(readings).toHaveLength(0);
    expect(warnings.filter((w) => isApiaryError(w, ErrorCodes.DEVICE_DATA_INVALID)).length).toBeGreaterThanOrEqual(4);
    await board.ds18b20(ID, 21.25);
    await waitFor(() => readings.length > 0, 'a good reading');
    expect(readings[0]?.value).toBe(21.25);
  });

  it('without an id, reads the only probe, and refuses to guess between two', async () => {
    await board.ds18b20(ID, 30);
    await board.ds18b20('28-0000000000aa', 31);
    const { device, readings, warnings } = open({});
    await device.open();
    await waitFor(() => warnings.length > 0, 'a warning');
    expect(warnings[0]?.message).toMatch(/2 DS18B20 probes on the bus.*set "id"/);
    expect(readings).toHaveLength(0);
    await board.unplug('sys/bus/w1/devices/28-0000000000aa');
    await waitFor(() => readings.length > 0, 'a reading of the only probe');
    expect(readings[0]?.value).toBe(30);
  });
});
