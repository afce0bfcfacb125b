/**
 * `apiary doctor`'s board section: what the kernel shows of the hardware, read
 * from sysfs, /dev and /proc under a root path ("/" on a board, a fake tree in
 * tests) with the same Sysfs seam the Linux drivers use. Only directory
 * listings and `name` files are read here: reading a sensor's value can start
 * a measurement, which is left to the configured-sensor check.
 */
import { readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { IIO_DEVICES } from '../../devices/linux/iio.js';
import { Sysfs } from '../../devices/linux/sysfs.js';

export const W1_DEVICES = 'sys/bus/w1/devices';
export const HWMON = 'sys/class/hwmon';
export const I2C_ADAPTERS = 'sys/class/i2c-adapter';
export const I2C_DEVICES = 'sys/bus/i2c/devices';

export const BOARD_HINTS = {
  oneWire: 'no 1-Wire bus: add dtoverlay=w1-gpio to /boot/firmware/config.txt and reboot (DATA on GPIO4, a 4.7 kΩ pull-up to 3.3 V)',
  oneWireEmpty: 'the 1-Wire bus is up but no device answers: check the probe\'s wiring (DATA on GPIO4, GND, 3.3 V) and the 4.7 kΩ pull-up between DATA and 3.3 V',
  i2c: 'no I2C bus: add dtparam=i2c_arm=on to /boot/firmware/config.txt and reboot (or `sudo raspi-config nonint do_i2c 0`)',
  iio: 'no IIO device: a BME280 appears with dtoverlay=i2c-sensor,bme280 in /boot/firmware/config.txt (README, "Hardware"); HX711 and NAU7802 need their overlay',
  hwmon: 'no hwmon device: an SHT3x appears with dtoverlay=i2c-sensor,sht3x in /boot/firmware/config.txt (README, "Hardware")',
  alsa: 'no sound card: ALSA is not loaded (no /proc/asound/cards)',
  alsaCapture: 'no capture device: plug in the USB microphone (`arecord -l` lists it), or for an I2S microphone add dtparam=i2s=on and its overlay to /boot/firmware/config.txt',
  gpio: 'no GPIO chip: the kernel exposes no /dev/gpiochip* (is this a board with GPIO? on a Pi, check that the kernel is the Raspberry Pi one)',
  serial: 'no serial port: plug in the USB-serial adapter (it appears as /dev/ttyUSB0 or /dev/ttyACM0), or add enable_uart=1 to /boot/firmware/config.txt for the header UART (/dev/serial0)',
} as const;

/** One thing found: `id` as the user would name it, `path` where it was seen (absolute on the board). */
export interface BoardItem {
  readonly id: string;
  readonly path: string;
  readonly name?: string;
  /** What is odd about it, if anything (a declared I2C device no driver took). */
  readonly problem?: string;
  readonly hint?: string;
  /** I2C buses: the devices declared on them (an overlay, or new_device). */
  readonly devices?: readonly BoardItem[];
}

export interface BoardSection {
  readonly name: string;
  readonly found: readonly BoardItem[];
  /** When nothing was found: how to make it appear. */
  readonly hint?: string;
}

export interface BoardReport {
  readonly root: string;
  readonly oneWire: BoardSection;
  readonly i2c: BoardSection;
  readonly iio: BoardSection;
  readonly hwmon: BoardSection;
  readonly audioCapture: BoardSection;
  readonly gpio: BoardSection;
  readonly serial: BoardSection;
}

/** The groups the .deb puts its apiary user in (packaging/debian/postinst). */
const APIARY_GROUPS = ['gpio', 'i2c', 'spi', 'dialout', 'audio'];

/** The owner and mode of a /dev node, and who is asking. */
export interface Access { readonly mode: number; readonly uid: number; readonly gid: number; readonly userUid: number; readonly userGids: readonly number[] }

/** Whether the user can open the node read-write, by the owner/group/other bits (access(2) says yes to root on anything). */
export function canReadWrite(a: Access): boolean {
  if (a.userUid === 0) return true;
  const bits = a.uid === a.userUid ? (a.mode >> 6) & 0o6 : a.userGids.includes(a.gid) ? (a.mode >> 3) & 0o6 : a.mode & 0o6;
  return bits === 0o6;
}

/** A /dev node this user cannot open: a problem and the group to join (named from /etc/group when it can be). */
async function deviceAccess(sysfs: Sysfs, file: string): Promise<Pick<BoardItem, 'problem' | 'hint'>> {
  if (typeof process.getuid !== 'function' || typeof process.getgroups !== 'function') return {};
  const st = await stat(sysfs.resolve(file)).catch(() => undefined);
  if (!st) return {};
  const access = { mode: st.mode, uid: st.uid, gid: st.gid, userUid: process.getuid(), userGids: process.getgroups() };
  if (canReadWrite(access)) return {};
  const groups = await readFile('/etc/group', 'utf8').catch(() => '');
  const group = groups.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(st.gid))?.[0] ?? `gid ${st.gid}`;
  const problem = `this user cannot open /${file} (mode ${(st.mode & 0o777).toString(8)}, group ${group})`;
  if (st.gid === 0) return { problem, hint: 'only root may open it: on Raspberry Pi OS udev gives /dev/gpiochip* to the gpio group, /dev/i2c-* to i2c and serial ports to dialout; check the udev rules' };
  const deb = APIARY_GROUPS.includes(group) ? '; the .deb\'s apiary user is in it, so run the doctor as that user (`sudo -u apiary apiary doctor`)' : '';
  return { problem, hint: `add the user to the ${group} group (\`sudo usermod -aG ${group} <user>\`, then log in again)${deb}` };
}

const W1_FAMILIES: Record<string, string> = { '10': 'DS18S20', '22': 'DS1822', '28': 'DS18B20', '3b': 'MAX31850', '42': 'DS28EA00' };

const abs = (file: string) => `/${file}`;
const section = (name: string, found: readonly BoardItem[], hint: string): BoardSection => (found.length > 0 ? { name, found } : { name, found, hint });

export async function oneWire(sysfs: Sysfs): Promise<BoardSection> {
  const entries = await sysfs.list(W1_DEVICES);
  const masters = entries.filter((e) => e.startsWith('w1_bus_master'));
  const found: BoardItem[] = [];
  for (const id of entries.filter((e) => /^[0-9a-f]{2}-[0-9a-f]{12}$/i.test(e))) {
    const family = W1_FAMILIES[id.slice(0, 2).toLowerCase()];
    const dir = path.join(W1_DEVICES, id);
    const therm = family !== undefined && !(await sysfs.exists(path.join(dir, 'w1_slave')));
    found.push({
      id, path: abs(dir), ...(family ? { name: family } : {}),
      ...(therm ? { problem: 'no w1_slave file: the w1_therm driver is not loaded', hint: 'sudo modprobe w1_therm (and add w1_therm to /etc/modules)' } : {}),
    });
  }
  if (found.length > 0) return { name: '1-Wire', found };
  return { name: '1-Wire', found, hint: masters.length > 0 || entries.length > 0 ? BOARD_HINTS.oneWireEmpty : BOARD_HINTS.oneWire };
}

/** I2C buses (adapters in sysfs, or /dev/i2c-N) and the devices the kernel declared on each, bound to a driver or not. */
export async function i2c(sysfs: Sysfs): Promise<BoardSection> {
  const numbers = new Set<number>();
  for (const entry of await sysfs.list(I2C_ADAPTERS)) if (/^i2c-\d+$/.test(entry)) numbers.add(Number(entry.slice(4)));
  for (const entry of await sysfs.list('dev')) if (/^i2c-\d+$/.test(entry)) numbers.add(Number(entry.slice(4)));
  const declared = await i2cDevices(sysfs);
  const found: BoardItem[] = [];
  for (const n of [...numbers].sort((a, b) => a - b)) {
    const name = await sysfs.text(path.join(I2C_ADAPTERS, `i2c-${n}`, 'name')).catch(() => undefined);
    const dev = `dev/i2c-${n}`;
    const hasDev = await sysfs.exists(dev);
    found.push({
      id: `i2c-${n}`, path: hasDev ? abs(dev) : abs(path.join(I2C_ADAPTERS, `i2c-${n}`)),
      ...(name ? { name } : {}), ...(hasDev ? await deviceAccess(sysfs, dev) : {}), devices: declared.filter((d) => d.bus === n).map((d) => d.item),
    });
  }
  return section('I2C', found, BOARD_HINTS.i2c);
}

export interface I2cDevice { readonly bus: number; readonly address: number; readonly item: BoardItem }

/** /sys/bus/i2c/devices/<bus>-<4-hex-digit address>: its `name`, and whether a driver took it (the `driver` link). */
export async function i2cDevices(sysfs: Sysfs): Promise<I2cDevice[]> {
  const devices: I2cDevice[] = [];
  for (const entry of await sysfs.list(I2C_DEVICES)) {
    const match = /^(\d+)-([0-9a-f]{4})$/i.exec(entry);
    if (!match) continue;
    const dir = path.join(I2C_DEVICES, entry);
    const address = parseInt(match[2] ?? '0', 16);
    const name = await sysfs.text(path.join(dir, 'name')).catch(() => '?');
    const bound = await sysfs.exists(path.join(dir, 'driver'));
    const id = `0x${address.toString(16).padStart(2, '0')}`;
    devices.push({
      bus: Number(match[1]), address,
      item: {
        id, path: abs(dir), name,
        ...(bound ? {} : {
          problem: `declared at ${id} but no driver took it: the chip did not answer, or its driver is missing`,
          hint: `check the wiring (SDA, SCL, 3.3 V, GND) and the address (i2cdetect -y ${match[1]}); \`modinfo ${name}\` says whether the kernel has its driver`,
        }),
      },
    });
  }
  return devices;
}

/** Devices under `dir` whose entries start with `prefix`, with their `name` attribute. */
async function named(sysfs: Sysfs, dir: string, prefix: string): Promise<BoardItem[]> {
  const found: BoardItem[] = [];
  for (const entry of await sysfs.list(dir)) {
    if (!entry.startsWith(prefix)) continue;
    const name = await sysfs.text(path.join(dir, entry, 'name')).catch(() => undefined);
    found.push({ id: entry, path: abs(path.join(dir, entry)), ...(name ? { name } : {}) });
  }
  return found;
}

/**
 * ALSA capture devices: /proc/asound/pcm lines "01-00: USB Audio : USB Audio : playback 1 : capture 1"
 * with "capture", named after their card in /proc/asound/cards (" 1 [Device ]: USB-Audio - USB PnP Sound Device").
 */
export async function audioCapture(sysfs: Sysfs): Promise<BoardSection> {
  const cardsText = await sysfs.text('proc/asound/cards').catch(() => undefined);
  if (cardsText === undefined) return { name: 'ALSA capture', found: [], hint: BOARD_HINTS.alsa };
  const cards = new Map<number, string>();
  for (const line of cardsText.split('\n')) {
    const match = /^\s*(\d+)\s+\[([^\]]*)\]:\s*(.*)$/.exec(line);
    if (match) cards.set(Number(match[1]), `${(match[2] ?? '').trim()}: ${(match[3] ?? '').trim()}`);
  }
  const pcm = await sysfs.text('proc/asound/pcm').catch(() => '');
  const found: BoardItem[] = [];
  for (const line of pcm.split('\n')) {
    const match = /^(\d+)-(\d+):\s*([^:]*)/.exec(line);
    if (!match || !/\bcapture\b/.test(line)) continue;
    const card = Number(match[1]);
    const device = Number(match[2]);
    found.push({ id: `hw:${card},${device}`, path: '/proc/asound/pcm', name: `${cards.get(card) ?? `card ${card}`} (${(match[3] ?? '').trim()})` });
  }
  return section('ALSA capture', found, BOARD_HINTS.alsaCapture);
}

export async function gpio(sysfs: Sysfs): Promise<BoardSection> {
  const chips = new Map<string, string>();
  for (const entry of await sysfs.list('sys/bus/gpio/devices')) if (/^gpiochip\d+$/.test(entry)) chips.set(entry, abs(path.join('sys/bus/gpio/devices', entry)));
  for (const entry of await sysfs.list('dev')) if (/^gpiochip\d+$/.test(entry)) chips.set(entry, abs(path.join('dev', entry)));
  const found: BoardItem[] = [];
  for (const [id, where] of [...chips].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    found.push({ id, path: where, ...(where.startsWith('/dev/') ? await deviceAccess(sysfs, where.slice(1)) : {}) });
  }
  return section('GPIO', found, BOARD_HINTS.gpio);
}

const SERIAL = /^(ttyUSB\d+|ttyACM\d+|serial\d|ttyAMA0|ttyS0)$/;

/** Serial ports; /dev/serial0 on a Pi is a link to the UART it uses, shown as its name. */
export async function serial(sysfs: Sysfs): Promise<BoardSection> {
  const found: BoardItem[] = [];
  for (const entry of await sysfs.list('dev')) {
    if (!SERIAL.test(entry)) continue;
    const target = await readlink(sysfs.resolve('dev', entry)).catch(() => undefined);
    found.push({ id: entry, path: abs(path.join('dev', entry)), ...(target ? { name: `-> ${path.basename(target)}` } : {}), ...(await deviceAccess(sysfs, path.join('dev', entry))) });
  }
  return section('serial', found, BOARD_HINTS.serial);
}

export async function boardReport(root: string): Promise<BoardReport> {
  const sysfs = new Sysfs(root);
  return {
    root,
    oneWire: await oneWire(sysfs),
    i2c: await i2c(sysfs),
    iio: section('IIO', await named(sysfs, IIO_DEVICES, 'iio:device'), BOARD_HINTS.iio),
    hwmon: section('hwmon', await named(sysfs, HWMON, 'hwmon'), BOARD_HINTS.hwmon),
    audioCapture: await audioCapture(sysfs),
    gpio: await gpio(sysfs),
    serial: await serial(sysfs),
  };
}

export function formatBoard(board: BoardReport): string[] {
  const lines = [`board (under ${board.root})`];
  for (const s of [board.oneWire, board.i2c, board.iio, board.hwmon, board.audioCapture, board.gpio, board.serial]) {
    if (s.found.length === 0) lines.push(`  ${s.name.padEnd(13)} none`, `    fix: ${s.hint ?? '?'}`);
    for (const item of s.found) {
      lines.push(`  ${s.name.padEnd(13)} ${item.id}${item.name ? ` ${item.name}` : ''}  ${item.path}`);
      if (item.problem) lines.push(`    ${item.problem}`, `    fix: ${item.hint ?? '?'}`);
      for (const d of item.devices ?? []) {
        lines.push(`    ${d.id} ${d.name ?? '?'}${d.problem ? `: ${d.problem}` : ''}`);
        if (d.hint) lines.push(`      fix: ${d.hint}`);
      }
    }
  }
  return lines;
}
