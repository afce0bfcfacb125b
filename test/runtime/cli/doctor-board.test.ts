/**
 * `apiary doctor --root <fake tree> --json` as a user runs it (a child process), against a fake board:
 * sysfs, /dev and /proc files in a temp dir, and fake `timedatectl` / `systemctl` programs first in PATH.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../../runtime/cli/doctor-command.js';
import { BOARD_HINTS, canReadWrite } from '../../../runtime/cli/doctor-board.js';
import { clockFinding, clockReport, diskFinding, serviceReport } from '../../../runtime/cli/doctor-system.js';
import { apiary } from '../../support/cli.js';
import { BUILT_CLI } from '../../support/global-setup.js';
import { FakeBoard } from '../../support/fake-board.js';

const SENSORS_YAML = `node: { dataDir: data }
device:
  kind: linux
  linux:
    sensors:
      - { driver: ds18b20, id: 28-0316a2795bff, channel: brood_temp }
      - { driver: hwmon, name: sht3x, quantity: temperature }
      - { driver: hwmon, name: sht3x, quantity: humidity }
      - { driver: iio, name: bme280, quantity: pressure }
      - { driver: nau7802 }
      - { driver: serial-line, port: /dev/ttyUSB0, channel: co2, key: co2 }
    audio: { driver: alsa, device: "plughw:1,0" }
    button: { chip: gpiochip0, line: 17 }
`;

async function script(dir: string, name: string, body: string): Promise<void> {
  const file = path.join(dir, name);
  await writeFile(file, `#!${process.execPath}\nconst args = process.argv.slice(2);\n${body}\n`);
  await chmod(file, 0o755);
}

async function doctor(root: string, cwd: string, pathDir: string): Promise<DoctorReport> {
  const { code, stdout, stderr } = await apiary(['doctor', '--json', '--root', root], cwd, { PATH: pathDir });
  expect(code, stderr).toBe(0); // board findings are warnings: the exit code follows the inference backends only
  return JSON.parse(stdout) as DoctorReport;
}

describe('apiary doctor on a board', () => {
  let board: FakeBoard;
  let empty: FakeBoard;
  let dir: string;
  let bin: string;
  let noBin: string;
  let full: DoctorReport;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-board-'));
    bin = path.join(dir, 'bin');
    noBin = path.join(dir, 'no-bin');
    await mkdir(bin);
    await mkdir(noBin);
    await mkdir(path.join(dir, 'data'));
    await writeFile(path.join(dir, 'apiary.yaml'), SENSORS_YAML);
    await script(bin, 'timedatectl', "console.log(args.join(' ') === 'show -p NTPSynchronized --value' ? 'yes' : '?');");
    await script(bin, 'systemctl', `
if (args[1] !== 'apiary') process.exit(4);
if (args[0] === 'is-enabled') console.log('enabled');
else if (args[0] === 'is-active') { console.log('failed'); process.exit(3); }
else process.exit(1);`);

    board = await FakeBoard.create();
    await board.write('sys/bus/w1/devices/w1_bus_master1/name', 'w1_bus_master1\n');
    await board.ds18b20('28-0316a2795bff', 21.5);
    await board.write('sys/bus/w1/devices/28-000000000001/name', '28-000000000001\n'); // no w1_slave: w1_therm not loaded
    await board.write('sys/class/i2c-adapter/i2c-1/name', 'bcm2835 (i2c@7e804000)\n');
    await board.write('dev/i2c-1', '');
    await board.write('sys/bus/i2c/devices/1-0044/name', 'sht3x\n');
    await board.write('sys/bus/i2c/devices/1-0044/driver/uevent', '');
    await board.write('sys/bus/i2c/devices/1-0076/name', 'bme280\n');
    await board.write('sys/bus/i2c/devices/1-0076/driver/uevent', '');
    await board.write('sys/bus/i2c/devices/1-002a/name', 'nau7802\n'); // declared, no driver took it: not answering
    await board.write('sys/bus/i2c/devices/i2c-1/name', 'bcm2835 (i2c@7e804000)\n'); // the adapter's own entry: not a device
    await board.hwmon(0, 'cpu_thermal', { temp1_input: 48000 });
    await board.hwmon(1, 'sht3x', { temp1_input: 23125, humidity1_input: 45200 });
    await board.iio(0, 'bme280', { in_pressure_input: 101.325, in_temp_input: 22000 });
    await board.write('proc/asound/cards', [
      ' 0 [vc4hdmi        ]: vc4-hdmi - vc4-hdmi',
      '                      vc4-hdmi',
      ' 1 [Device         ]: USB-Audio - USB PnP Sound Device',
      '                      C-Media Electronics Inc. USB PnP Sound Device at usb-3f980000.usb-1.3, full speed',
      '',
    ].join('\n'));
    await board.write('proc/asound/pcm', '00-00: MAI PCM i2s-hifi-0 : MAI PCM i2s-hifi-0 : playback 1\n01-00: USB Audio : USB Audio : playback 1 : capture 1\n');
    await board.write('sys/bus/gpio/devices/gpiochip0/uevent', '');
    await board.write('dev/gpiochip0', '');
    await board.write('dev/gpiochip1', '');
    for (const tty of ['ttyUSB0', 'ttyS0', 'ttyS1', 'tty1']) await board.write(`dev/${tty}`, '');
    await symlink('ttyS0', path.join(board.root, 'dev/serial0'));

    empty = await FakeBoard.create();
    await empty.write('run/systemd/timesync/synchronized', '');
    full = await doctor(board.root, dir, bin);
  });
  afterAll(async () => {
    await board.remove();
    await empty.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists what the kernel shows: 1-Wire probes, I2C buses and their devices, IIO, hwmon, capture devices, GPIO chips and serial ports', () => {
    const b = full.board;
    expect(b.root).toBe(board.root);
    expect(b.oneWire.found.map((f) => [f.id, f.name, f.problem === undefined])).toEqual([['28-000000000001', 'DS18B20', false], ['28-0316a2795bff', 'DS18B20', true]]);
    expect(b.oneWire.found[0]?.hint).toContain('modprobe w1_therm');
    expect(b.oneWire.hint).toBeUndefined();
    expect(b.i2c.found).toHaveLength(1);
    const bus = b.i2c.found[0];
    expect(bus).toMatchObject({ id: 'i2c-1', name: 'bcm2835 (i2c@7e804000)', path: '/dev/i2c-1' });
    expect(bus?.devices?.map((d) => [d.id, d.name, d.problem === undefined])).toEqual([['0x2a', 'nau7802', false], ['0x44', 'sht3x', true], ['0x76', 'bme280', true]]);
    expect(bus?.devices?.[0]?.hint).toContain('i2cdetect -y 1');
    expect(b.iio.found.map((f) => [f.id, f.name])).toEqual([['iio:device0', 'bme280']]);
    expect(b.hwmon.found.map((f) => [f.id, f.name])).toEqual([['hwmon0', 'cpu_thermal'], ['hwmon1', 'sht3x']]);
    expect(b.audioCapture.found.map((f) => f.id)).toEqual(['hw:1,0']);
    expect(b.audioCapture.found[0]?.name).toContain('USB PnP Sound Device');
    expect(b.gpio.found.map((f) => f.id)).toEqual(['gpiochip0', 'gpiochip1']);
    expect(b.serial.found.map((f) => [f.id, f.name])).toEqual([['serial0', '-> ttyS0'], ['ttyS0', undefined], ['ttyUSB0', undefined]]);
    for (const s of [b.oneWire, b.i2c, b.iio, b.hwmon, b.audioCapture, b.gpio, b.serial]) expect(s.hint, s.name).toBeUndefined();
  });

  it('reads each configured sensor once: values from the ones that answer, the declared NAU7802 that does not is missing with the wiring hint', () => {
    const { sensors } = full;
    expect(sensors?.map((s) => [s.channel, s.status])).toEqual([
      ['brood_temp', 'ok'], ['temperature', 'ok'], ['humidity', 'ok'], ['pressure', 'ok'], ['weight', 'missing'], ['co2', 'ok'], ['sound', 'ok'], ['button', 'ok'],
    ]);
    expect(sensors?.map((s) => s.detail).slice(0, 4)).toEqual(['21.50 °C', '23.13 °C', '45.20 %', '1013.25 hPa']);
    const weight = sensors?.find((s) => s.channel === 'weight');
    expect(weight?.detail).toContain('no IIO device named "nau7802"');
    expect(weight?.hint).toContain('declared on i2c-1 at 0x2a but did not answer');
    expect(sensors?.find((s) => s.channel === 'sound')?.detail).toContain('hw:1,0');
  });

  it('checks the disk, the clock through timedatectl and the service through systemctl, with a hint for a failed service', () => {
    const { system } = full;
    expect(system.disk.status).toMatch(/^(ok|warn)$/);
    expect(system.disk.path).toBe(path.join(dir, 'data'));
    expect(system.disk.totalBytes).toBeGreaterThan(0);
    expect(system.clock).toMatchObject({ status: 'ok', synchronized: true, source: 'timedatectl' });
    expect(system.service).toMatchObject({ status: 'warn', active: 'failed', enabled: 'enabled' });
    expect(system.service.hint).toContain('journalctl -u apiary');
  });

  it('on a bare tree with no commands: every subsystem gives its hint, an absent probe is missing with the dtoverlay line, the service is not installed', async () => {
    const report = await doctor(empty.root, dir, noBin);
    const b = report.board;
    expect(b.oneWire).toMatchObject({ found: [], hint: BOARD_HINTS.oneWire });
    expect(b.oneWire.hint).toContain('dtoverlay=w1-gpio');
    expect(b.i2c.hint).toContain('dtparam=i2c_arm=on');
    expect(b.iio.hint).toContain('dtoverlay=i2c-sensor,bme280');
    expect(b.hwmon.hint).toContain('dtoverlay=i2c-sensor,sht3x');
    expect(b.audioCapture.hint).toBe(BOARD_HINTS.alsa);
    expect(b.gpio.hint).toBe(BOARD_HINTS.gpio);
    expect(b.serial.hint).toContain('enable_uart=1');
    const sensors = report.sensors ?? [];
    expect(sensors.find((s) => s.channel === 'brood_temp')).toMatchObject({ status: 'missing', hint: BOARD_HINTS.oneWire });
    expect(sensors.find((s) => s.channel === 'temperature')?.hint).toContain('no I2C bus: add dtparam=i2c_arm=on and dtoverlay=i2c-sensor,sht3x');
    expect(sensors.find((s) => s.channel === 'co2')).toMatchObject({ status: 'missing', detail: '/dev/ttyUSB0 does not exist' });
    expect(sensors.find((s) => s.channel === 'sound')?.status).toBe('missing');
    expect(sensors.find((s) => s.channel === 'button')?.hint).toBe(BOARD_HINTS.gpio);
    // No timedatectl: systemd-timesyncd's flag file under the root says synchronised.
    expect(report.system.clock).toMatchObject({ status: 'ok', synchronized: true, source: '/run/systemd/timesync/synchronized' });
    expect(report.system.service).toMatchObject({ status: 'unknown', detail: 'not installed as a service (no systemctl)', active: null });
  });

  it('with an invalid config: names the config error first, still reports the board and the system, and exits 78', async () => {
    await writeFile(path.join(dir, 'bad.yaml'), SENSORS_YAML.replace('channel: brood_temp }', 'channel: brood_temp, interval: fast }'));
    const args = ['doctor', '--config', 'bad.yaml', '--root', board.root, '--data-dir', path.join(dir, 'data')];
    const json = await apiary([...args, '--json'], dir, { PATH: bin });
    expect(json.code).toBe(78);
    expect(json.stderr).toContain('APIARY_CONFIG_INVALID');
    expect(json.stderr).toContain('field "device.linux.sensors.0.interval": got "fast"');
    const report = JSON.parse(json.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.config).toMatchObject({ valid: false, code: 'APIARY_CONFIG_INVALID' });
    expect(report.config.valid === false && report.config.error).toContain('device.linux.sensors.0.interval');
    // What needs no config is the same as with a valid one: the board, the system, the backends.
    expect(report.board).toEqual(full.board);
    expect(report.system.disk.path).toBe(path.join(dir, 'data'));
    expect(report.system.clock).toMatchObject({ status: 'ok', synchronized: true, source: 'timedatectl' });
    expect(report.system.service).toMatchObject({ status: 'warn', active: 'failed', enabled: 'enabled' });
    expect(report.backends.some((b) => b.ok)).toBe(true);
    // What needs the config is left out rather than guessed.
    expect([report.selected, report.cache, report.sensors]).toEqual([null, null, null]);

    const text = await apiary(args, dir, { PATH: bin });
    expect(text.code).toBe(78);
    expect(text.stdout.startsWith('config: INVALID: APIARY_CONFIG_INVALID')).toBe(true);
    expect(text.stdout).toContain(`board (under ${board.root})`);
    expect(text.stdout).toMatch(/I2C\s+i2c-1/);
    expect(text.stdout).toMatch(/service\s+WARN: /);
    expect(text.stdout).not.toContain('this node would use');
    expect(text.stdout).toContain('FAILED: the config is invalid');
  });

  it('prints the board, sensors and system sections with their fixes', async () => {
    const { code, stdout } = await apiary(['doctor', '--root', empty.root], dir, { PATH: noBin });
    expect(code).toBe(0);
    expect(stdout).toContain(`board (under ${empty.root})`);
    expect(stdout).toContain(`fix: ${BOARD_HINTS.oneWire}`);
    expect(stdout).toMatch(/brood_temp:\s+MISSING\s+ds18b20 28-0316a2795bff/);
    expect(stdout).toContain('not installed as a service');
    expect(stdout).toContain('ok: at least one backend works');
  });
});

describe('doctor verdicts on disk space, the clock and device permissions', () => {
  it('a device node is usable read-write through its owner, group or other bits, as the kernel decides (root always)', () => {
    const gpiochip = { mode: 0o20660, uid: 0, gid: 997 }; // crw-rw---- root:gpio
    expect(canReadWrite({ ...gpiochip, userUid: 1000, userGids: [1000, 997] })).toBe(true);
    expect(canReadWrite({ ...gpiochip, userUid: 1000, userGids: [1000, 20] })).toBe(false);
    expect(canReadWrite({ ...gpiochip, userUid: 0, userGids: [0] })).toBe(true);
    expect(canReadWrite({ mode: 0o20600, uid: 1000, gid: 997, userUid: 1000, userGids: [] })).toBe(true);
    expect(canReadWrite({ mode: 0o20640, uid: 0, gid: 997, userUid: 1000, userGids: [997] })).toBe(false); // read-only for the group
    expect(canReadWrite({ mode: 0o20666, uid: 0, gid: 0, userUid: 1000, userGids: [] })).toBe(true);
  });

  const GB = 1024 ** 3;
  it('warns under 200 MB or under 10 % free, with a hint', () => {
    expect(diskFinding('/var/lib/apiary', 8 * GB, 16 * GB).status).toBe('ok');
    expect(diskFinding('/var/lib/apiary', 150 * 1024 * 1024, 1 * GB)).toMatchObject({ status: 'warn', hint: expect.stringContaining('journalctl --vacuum-size') as unknown });
    expect(diskFinding('/var/lib/apiary', 1 * GB, 32 * GB).status).toBe('warn'); // 1 GB is plenty of bytes, but 3 %
  });

  it('a clock before the build is wrong whatever the sync flag says; an unsynchronised one is a warning; no answer is unknown', () => {
    const built = new Date('2026-12-01T00:00:00Z');
    const early = clockFinding(new Date('2025-01-01T00:00:00Z'), built, true, 'timedatectl');
    expect(early.status).toBe('warn');
    expect(early.hint).toContain('no real-time clock');
    expect(clockFinding(new Date('2026-12-02T00:00:00Z'), built, false, 'timedatectl').status).toBe('warn');
    expect(clockFinding(new Date('2026-12-02T00:00:00Z'), built, null, 'no timedatectl').status).toBe('unknown');
    expect(clockFinding(new Date('2026-12-02T00:00:00Z'), built, true, 'timedatectl').status).toBe('ok');
  });
});

describe('doctor service and clock checks through fake systemctl and timedatectl', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-system-'));
    // As systemd 252+ answers for a unit it does not know.
    await script(dir, 'systemctl-none', "if (args[0] === 'is-enabled') { process.stderr.write('Failed to get unit file state for apiary.service: No such file or directory\\n'); process.exit(1); } console.log('inactive'); process.exit(3);");
    await script(dir, 'systemctl-disabled', "if (args[0] === 'is-enabled') { console.log('disabled'); process.exit(1); } console.log('active');");
    await script(dir, 'systemctl-stopped', "if (args[0] === 'is-enabled') { console.log('enabled'); } else { console.log('inactive'); process.exit(3); }");
    await script(dir, 'systemctl-ok', "console.log(args[0] === 'is-enabled' ? 'enabled' : 'active');");
    await script(dir, 'timedatectl-no', "console.log('no');");
    await script(dir, 'timedatectl-broken', "process.stderr.write('System has not been booted with systemd as init system (PID 1). Can\\'t operate.\\nFailed to connect to bus\\n'); process.exit(1);");
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('tells a unit that is not installed, disabled, stopped or fine apart, with the command that fixes each', async () => {
    expect(await serviceReport(path.join(dir, 'systemctl-none'))).toMatchObject({ status: 'unknown', detail: 'not installed as a service (no apiary.service)', active: null });
    expect(await serviceReport(path.join(dir, 'systemctl-disabled'))).toMatchObject({ status: 'warn', active: 'active', enabled: 'disabled', hint: expect.stringContaining('sudo systemctl enable apiary') as unknown });
    expect(await serviceReport(path.join(dir, 'systemctl-stopped'))).toMatchObject({ status: 'warn', active: 'inactive', hint: expect.stringContaining('sudo systemctl enable --now apiary') as unknown });
    expect(await serviceReport(path.join(dir, 'systemctl-ok'))).toMatchObject({ status: 'ok', detail: 'apiary.service: active, enabled' });
    expect(await serviceReport(path.join(dir, 'no-such-systemctl'))).toMatchObject({ status: 'unknown', detail: 'not installed as a service (no systemctl)' });
  });

  it('timedatectl "no" is a warning; a timedatectl that cannot answer, with no timesyncd flag file, is unknown and says why', async () => {
    const unsynced = await clockReport(dir, new Date(), path.join(dir, 'timedatectl-no'));
    expect(unsynced).toMatchObject({ status: 'warn', synchronized: false, source: 'timedatectl' });
    expect(unsynced.hint).toContain('timedatectl timesync-status');
    const broken = await clockReport(dir, new Date(), path.join(dir, 'timedatectl-broken'));
    expect(broken).toMatchObject({ status: 'unknown', synchronized: null });
    expect(broken.source).toBe('timedatectl: System has not been booted with systemd as init system (PID 1). Can\'t operate., and no /run/systemd/timesync/synchronized');
  });
});

// Permissions need a user who lacks them: as root, the doctor runs as nobody (uid 65534); as anyone else there is no way to switch.
/** Root can switch to nobody, and nobody can read the built CLI (not so in a checkout under a 0700 folder). */
const nobodyRunsCli = process.getuid?.() === 0
  && spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(BUILT_CLI)})`], { uid: 65534, gid: 65534 }).status === 0;

describe.skipIf(!nobodyRunsCli)('apiary doctor as a user without the device groups (needs root to switch users, and a checkout nobody can read)', () => {
  let tree: string;
  beforeAll(async () => {
    tree = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-perm-'));
    await mkdir(path.join(tree, 'dev'));
    for (const node of ['gpiochip0', 'ttyUSB0', 'i2c-1']) await writeFile(path.join(tree, 'dev', node), '');
    await chown(path.join(tree, 'dev/ttyUSB0'), 0, 20); // group 20 = dialout on Debian
    await chmod(path.join(tree, 'dev/ttyUSB0'), 0o660);
    await chmod(path.join(tree, 'dev/gpiochip0'), 0o600); // root only
    await chmod(path.join(tree, 'dev/i2c-1'), 0o666);
    await writeFile(path.join(tree, 'apiary.yaml'), `node: { dataDir: ${path.join(tree, 'data')} }\n`);
    await chmod(tree, 0o755);
  });
  afterAll(async () => { await rm(tree, { recursive: true, force: true }); });

  it('says which device nodes this user cannot open and which group to join', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [BUILT_CLI, 'doctor', '--json', '--root', tree], { cwd: tree, uid: 65534, gid: 65534 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
    });
    const { board } = JSON.parse(stdout) as DoctorReport;
    const serialPort = board.serial.found.find((f) => f.id === 'ttyUSB0');
    expect(serialPort?.problem).toContain('this user cannot open /dev/ttyUSB0 (mode 660');
    expect(serialPort?.hint).toMatch(/add the user to the \S+ group \(`sudo usermod -aG/);
    expect(board.gpio.found[0]?.hint).toContain('only root may open it');
    expect(board.i2c.found[0]?.problem).toBeUndefined();
  });
});
