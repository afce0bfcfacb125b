/**
 * `apiary doctor`'s configured-sensor check (device.kind: linux): each sensor
 * is looked up the way its driver does and read once through that driver, so
 * "ok" means the node would read it now. A failure says what is missing and
 * the config.txt line or wiring that fixes it. Serial ports are only looked
 * for (the running service may hold them open).
 */
import path from 'node:path';
import type { LinuxConfig, LinuxSensorConfig } from '../../devices/linux/config.js';
import { sensorChannel } from '../../devices/linux/config.js';
import { Ds18b20 } from '../../devices/linux/ds18b20.js';
import { Hwmon } from '../../devices/linux/hwmon.js';
import { Iio } from '../../devices/linux/iio.js';
import { LoadCell } from '../../devices/linux/load-cell.js';
import { SensorFault, Sysfs, type LinuxSensor, type SensorContext } from '../../devices/linux/sysfs.js';
import { audioCapture, BOARD_HINTS, gpio, i2c, i2cDevices, W1_DEVICES } from './doctor-board.js';

/** A read that hangs (an I2C bus held low) is reported, not waited for. */
const READ_TIMEOUT_MS = 5_000;

export interface SensorCheck {
  readonly sensor: string;
  readonly channel: string;
  readonly status: 'ok' | 'missing' | 'error';
  readonly detail: string;
  readonly hint?: string;
}

const context: SensorContext = { latest: () => undefined, now: () => Date.now(), note: () => undefined };

async function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SensorFault('missing', `${what}: no answer in ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why an I2C sensor named `name` (the kernel's client name) is not there, and what to add to config.txt. */
async function i2cHint(sysfs: Sysfs, name: string, overlay: string): Promise<string> {
  if ((await i2c(sysfs)).found.length === 0) return `no I2C bus: add dtparam=i2c_arm=on and ${overlay} to /boot/firmware/config.txt and reboot`;
  const declared = (await i2cDevices(sysfs)).find((d) => d.item.name === name);
  if (declared?.item.problem) return `${name} is declared on i2c-${declared.bus} at ${declared.item.id} but did not answer: ${declared.item.hint ?? ''}`;
  if (declared) return `${name} is bound on i2c-${declared.bus} at ${declared.item.id} but shows no device: check \`dmesg | grep ${name}\``;
  return `the kernel knows no ${name}: add ${overlay} to /boot/firmware/config.txt and reboot (README, "Hardware")`;
}

async function missingHint(sysfs: Sysfs, sensor: LinuxSensorConfig): Promise<string> {
  switch (sensor.driver) {
    case 'ds18b20': {
      const entries = await sysfs.list(W1_DEVICES);
      if (entries.length === 0) return BOARD_HINTS.oneWire;
      const probes = entries.filter((e) => e.startsWith('28-'));
      if (probes.length === 0) return BOARD_HINTS.oneWireEmpty;
      if (sensor.id !== undefined && !probes.includes(sensor.id)) return `probe ${sensor.id} is not on the bus, but ${probes.join(', ')} is: check the id in the config, or the probe's wiring`;
      if (probes.length > 1 && sensor.id === undefined) return `several probes (${probes.join(', ')}): set "id" on each ds18b20 sensor`;
      return 'the probe is listed but cannot be read: check its power (parasite power needs a strong pull-up) and that w1_therm is loaded';
    }
    case 'hwmon': return i2cHint(sysfs, sensor.name, `dtoverlay=i2c-sensor,${sensor.name}`);
    case 'iio': return i2cHint(sysfs, sensor.name, `dtoverlay=i2c-sensor,${sensor.name}`);
    case 'nau7802': return i2cHint(sysfs, 'nau7802', 'a nau7802 device (`echo nau7802 0x2a > /sys/bus/i2c/devices/i2c-1/new_device`, or an overlay with compatible "nuvoton,nau7802")');
    case 'hx711-iio': return 'no hx711 IIO device: the HX711 needs a device-tree overlay with compatible "avia,hx711" (README, "Hardware") and a kernel with CONFIG_HX711 (`modinfo hx711`)';
    case 'serial-line': return BOARD_HINTS.serial;
  }
}

const FAULT_HINTS = {
  crc: 'noise on the bus: shorten the cable, check the pull-up resistor and the ground',
  invalid: 'the sensor answered with a value it cannot measure: check its wiring, supply and calibration',
} as const;

function driverFor(sysfs: Sysfs, sensor: LinuxSensorConfig): LinuxSensor | undefined {
  switch (sensor.driver) {
    case 'ds18b20': return new Ds18b20(sysfs, sensor);
    case 'hwmon': return new Hwmon(sysfs, sensor);
    case 'iio': return new Iio(sysfs, sensor);
    case 'hx711-iio': case 'nau7802': return new LoadCell(sysfs, { ...sensor, compensation: undefined });
    case 'serial-line': return undefined;
  }
}

async function checkSensor(sysfs: Sysfs, sensor: LinuxSensorConfig): Promise<SensorCheck> {
  const channel = sensorChannel(sensor);
  if (sensor.driver === 'serial-line') {
    const port = path.relative('/', path.resolve('/', sensor.port));
    if (await sysfs.exists(port)) return { sensor: `serial-line ${sensor.port}`, channel, status: 'ok', detail: 'the port exists (not opened: the running service may hold it)' };
    return { sensor: `serial-line ${sensor.port}`, channel, status: 'missing', detail: `${sensor.port} does not exist`, hint: BOARD_HINTS.serial };
  }
  const driver = driverFor(sysfs, sensor);
  if (!driver) throw new Error('unreachable');
  try {
    const values = await withTimeout(driver.read(context), driver.describe);
    const unit = driver.channels[0]?.unit ?? '';
    return { sensor: driver.describe, channel, status: 'ok', detail: values.map((v) => `${v.value.toFixed(2)} ${unit}`.trim()).join(', ') };
  } catch (err) {
    const fault = err instanceof SensorFault ? err : new SensorFault('missing', err instanceof Error ? err.message : String(err));
    if (fault.kind === 'missing') return { sensor: driver.describe, channel, status: 'missing', detail: fault.message, hint: await missingHint(sysfs, sensor) };
    return { sensor: driver.describe, channel, status: 'error', detail: `${fault.kind}: ${fault.message}`, hint: FAULT_HINTS[fault.kind] };
  }
}

/** The microphone: its ALSA device among the capture devices (arecord is not run: the service may hold the card). */
async function checkAudio(sysfs: Sysfs, audio: NonNullable<LinuxConfig['audio']>): Promise<SensorCheck> {
  const sensor = `alsa ${audio.device}`;
  const capture = await audioCapture(sysfs);
  if (capture.found.length === 0) return { sensor, channel: 'sound', status: 'missing', detail: 'no ALSA capture device', hint: capture.hint ?? BOARD_HINTS.alsaCapture };
  const card = /^(?:plug)?hw:(\d+)(?:,(\d+))?$/.exec(audio.device);
  if (!card) return { sensor, channel: 'sound', status: 'ok', detail: `${capture.found.length} capture device(s): ${capture.found.map((f) => f.id).join(', ')}` };
  const id = `hw:${card[1]},${card[2] ?? '0'}`;
  const match = capture.found.find((f) => f.id === id);
  if (match) return { sensor, channel: 'sound', status: 'ok', detail: `${id} ${match.name ?? ''}`.trim() };
  return { sensor, channel: 'sound', status: 'missing', detail: `no capture device ${id}; found ${capture.found.map((f) => f.id).join(', ')}`, hint: `set device.linux.audio.device to one of those (as "plughw:<card>,<device>"); card numbers follow plug-in order` };
}

async function checkButton(sysfs: Sysfs, button: NonNullable<LinuxConfig['button']>): Promise<SensorCheck> {
  const chip = button.chip.startsWith('gpiochip') ? button.chip : `gpiochip${path.basename(button.chip).replace(/^gpiochip/, '')}`;
  const chips = (await gpio(sysfs)).found.map((f) => f.id);
  const sensor = `gpio ${chip} line ${button.line}`;
  if (chips.includes(chip)) return { sensor, channel: button.name, status: 'ok', detail: `${chip} exists` };
  return { sensor, channel: button.name, status: 'missing', detail: `no ${chip}${chips.length ? `; found ${chips.join(', ')}` : ''}`, hint: chips.length ? 'set device.linux.button.chip to one of those (`gpiodetect` lists them)' : BOARD_HINTS.gpio };
}

/** Each configured sensor, microphone and button, read or looked up once under `root`. */
export async function sensorChecks(linux: LinuxConfig, root: string): Promise<SensorCheck[]> {
  const sysfs = new Sysfs(root);
  const checks = await Promise.all(linux.sensors.map((s) => checkSensor(sysfs, s)));
  if (linux.audio?.enabled) checks.push(await checkAudio(sysfs, linux.audio));
  if (linux.button) checks.push(await checkButton(sysfs, linux.button));
  return checks;
}

export function formatSensors(checks: readonly SensorCheck[] | null): string[] {
  if (checks === null) return ['configured sensors: none (device.kind is not linux)'];
  const lines = ['configured sensors (device.kind: linux)'];
  if (checks.length === 0) lines.push('  none');
  for (const c of checks) {
    lines.push(`  ${`${c.channel}:`.padEnd(14)} ${c.status === 'ok' ? 'ok     ' : c.status.toUpperCase().padEnd(7)} ${c.sensor}: ${c.detail}`);
    if (c.hint) lines.push(`    fix: ${c.hint}`);
  }
  return lines;
}
