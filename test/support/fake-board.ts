/**
 * A fake Linux board in a temp dir, for devices/linux: the sysfs files the
 * kernel's drivers would show (1-Wire, hwmon, IIO), and fake `arecord` and
 * `gpiomon` programs (Node scripts) controlled through files in the tree.
 * Only the hardware is fake: the device reads real files and runs real
 * child processes.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc8 } from '../../devices/linux/ds18b20.js';
import { LinuxDevice } from '../../devices/linux/linux-device.js';
import type { Reading } from '../../devices/device.js';
import { ScaledClock } from '../../runtime/clock.js';
import { parseConfig } from '../../runtime/config/load-config.js';

export class FakeBoard {
  private constructor(readonly root: string) {}

  static async create(): Promise<FakeBoard> {
    return new FakeBoard(await mkdtemp(path.join(tmpdir(), 'apiary-board-')));
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  async write(file: string, text: string): Promise<void> {
    const full = path.join(this.root, file);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, text);
  }

  async unplug(dir: string): Promise<void> {
    await rm(path.join(this.root, dir), { recursive: true, force: true });
  }

  /** A DS18B20's w1_slave with a correct CRC for `celsius` (or the given overrides). */
  async ds18b20(id: string, celsius: number, options: { crcOk?: boolean; text?: string } = {}): Promise<void> {
    await this.write(`sys/bus/w1/devices/${id}/w1_slave`, options.text ?? w1Slave(celsius, options.crcOk ?? true));
  }

  async hwmon(n: number, name: string, attributes: Record<string, string | number>): Promise<void> {
    await this.write(`sys/class/hwmon/hwmon${n}/name`, `${name}\n`);
    for (const [file, value] of Object.entries(attributes)) await this.write(`sys/class/hwmon/hwmon${n}/${file}`, `${value}\n`);
  }

  async iio(n: number, name: string, attributes: Record<string, string | number>): Promise<void> {
    await this.write(`sys/bus/iio/devices/iio:device${n}/name`, `${name}\n`);
    for (const [file, value] of Object.entries(attributes)) await this.write(`sys/bus/iio/devices/iio:device${n}/${file}`, `${value}\n`);
  }

  /**
   * A fake `arecord`: records its arguments in arecord.args, then streams a 100 Hz sine of
   * amplitude 0.5 (S16_LE at the asked rate, in real time) until killed. While the file
   * `mic-unplugged` exists it prints an ALSA-like error and exits 1, as arecord does.
   */
  async fakeArecord(): Promise<string> {
    return this.script('arecord', `
const rate = Number(process.argv[process.argv.indexOf('-r') + 1]);
fs.writeFileSync(path.join(dir, 'arecord.args'), JSON.stringify(process.argv.slice(2)));
if (fs.existsSync(path.join(dir, 'mic-unplugged'))) {
  process.stderr.write('arecord: main:850: audio open error: No such file or directory\\n');
  process.exit(1);
}
let n = 0;
const chunk = () => {
  const count = Math.round(rate / 10);
  const buf = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i++, n++) buf.writeInt16LE(Math.round(0.5 * 32767 * Math.sin(2 * Math.PI * 100 * n / rate)), i * 2);
  process.stdout.write(buf);
  if (fs.existsSync(path.join(dir, 'mic-unplugged'))) process.exit(1);
};
chunk(); chunk(); chunk();
setInterval(chunk, 100);
`);
  }

  /**
   * A fake `gpiomon` of libgpiod `version` (1 or 2): answers --version, records its
   * arguments, then prints each line appended to gpio-events after it started (as "%o %e"
   * output) until killed; it exits 1 while the file `gpiomon-exit` exists (the chip gone).
   */
  async fakeGpiomon(version: 1 | 2): Promise<string> {
    await this.write('gpio-events', '');
    return this.script('gpiomon', `
if (process.argv[2] === '--version') { console.log('gpiomon (libgpiod) v${version === 1 ? '1.6.3' : '2.1.3'}'); process.exit(0); }
fs.writeFileSync(path.join(dir, 'gpiomon.args'), JSON.stringify(process.argv.slice(2)));
const read = () => fs.readFileSync(path.join(dir, 'gpio-events'), 'utf8').split('\\n').filter(Boolean);
let sent = read().length;
setInterval(() => {
  if (fs.existsSync(path.join(dir, 'gpiomon-exit'))) { process.stderr.write('gpiomon: unable to open chip\\n'); process.exit(1); }
  const lines = fs.readFileSync(path.join(dir, 'gpio-events'), 'utf8').split('\\n').filter(Boolean);
  for (; sent < lines.length; sent++) process.stdout.write(lines[sent] + '\\n');
}, 20);
`);
  }

  private async script(name: string, body: string): Promise<string> {
    const file = path.join(this.root, 'bin', name);
    await this.write(`bin/${name}`, `#!${process.execPath}\nconst fs = require('node:fs');\nconst path = require('node:path');\nconst dir = ${JSON.stringify(this.root)};\n${body}`);
    await chmod(file, 0o755);
    return file;
  }
}

/** A linux device over `board` reading `sensors` (every 100 ms unless given), with what it emits collected. */
export function linuxDevice(board: FakeBoard, sensors: Record<string, unknown>[]) {
  const linux = parseConfig({ device: { kind: 'linux', linux: { root: board.root, sensors: sensors.map((s) => ({ interval: '100ms', ...s })) } } }).device.linux;
  if (!linux) throw new Error('no linux section');
  const device = new LinuxDevice({ config: linux, clock: new ScaledClock() });
  const readings: Reading[] = [];
  const warnings: Error[] = [];
  device.on('reading', (r) => readings.push(r));
  device.on('warning', (w) => warnings.push(w));
  return { device, readings, warnings, last: (channel: string) => readings.filter((r) => r.channel === channel).at(-1) };
}

/** The two w1_slave lines the kernel's w1_therm driver prints for `celsius`. */
export function w1Slave(celsius: number, crcOk = true): string {
  const raw = Math.round(celsius * 16) & 0xffff;
  const bytes = [raw & 0xff, raw >> 8, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10];
  const crc = crc8(bytes);
  const hex = [...bytes, crc].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const milli = Math.trunc((((raw << 16) >> 16) * 1000) / 16); // as w1_therm computes it, from the register
  return `${hex} : crc=${crc.toString(16).padStart(2, '0')} ${crcOk ? 'YES' : 'NO'}\n${hex} t=${milli}\n`;
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
