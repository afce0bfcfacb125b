/**
 * A board read through the Linux kernel's own drivers (`device.kind: linux`):
 * the sensors listed in `device.linux.sensors`, each on its own timer, plus an
 * optional ALSA microphone and GPIO button. No native addon.
 *
 * A sensor that is unplugged, fails its CRC or gives an absurd value is
 * counted (`missing.<channel>`, `crc.<channel>`, `invalid.<channel>` in
 * `apiary status`'s deviceCounters) and reported as a warning, and nothing is
 * published for it; its timer keeps running, so it is picked up again when it
 * returns (`recovered.<channel>`). A missing sensor is reported when it goes
 * missing, not again at every interval.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../../runtime/clock.js';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { ChannelSpec, Device, DeviceEvents, DeviceState } from '../device.js';
import { AlsaMic } from './alsa-mic.js';
import type { LinuxConfig, LinuxSensorConfig } from './config.js';
import { Ds18b20 } from './ds18b20.js';
import { GpioButton } from './gpio-button.js';
import { Hwmon } from './hwmon.js';
import { Iio } from './iio.js';
import { LoadCell } from './load-cell.js';
import { SerialLine, type SerialOpener } from './serial-line.js';
import { SensorFault, Sysfs, type LinuxSensor, type SensorContext } from './sysfs.js';

export interface LinuxDeviceOptions {
  config: LinuxConfig;
  clock: Clock;
  /** Tests pass serialport's SerialPortMock here. */
  openSerialPort?: SerialOpener;
}

const HINTS = {
  missing: 'check the wiring and the dtoverlay line in /boot/firmware/config.txt (README, "Hardware"); `apiary doctor` lists what the kernel sees',
  crc: 'noise on the bus: shorten the cable, check the pull-up resistor and the ground',
  invalid: 'the sensor answered with a value it cannot measure: check its wiring, supply and calibration',
} as const;

export class LinuxDevice extends EventEmitter<DeviceEvents> implements Device {
  readonly kind = 'linux';
  readonly channels: readonly ChannelSpec[];
  readonly simulation = undefined;
  readonly hasAudio: boolean;
  private readonly sensors: LinuxSensor[];
  private readonly mic: AlsaMic | undefined;
  private readonly button: GpioButton | undefined;
  private readonly counters = new Map<string, number>();
  private readonly latest = new Map<string, { value: number; t: number }>();
  private readonly failing = new Set<string>();
  private readonly stops: (() => void)[] = [];
  private opened = false;
  private currentState: DeviceState = 'disconnected';

  constructor(private readonly options: LinuxDeviceOptions) {
    super();
    const { config, clock } = options;
    const sysfs = new Sysfs(config.root);
    this.sensors = config.sensors.map((sensor) => makeSensor(sensor, sysfs, clock, options.openSerialPort));
    this.channels = this.sensors.flatMap((s) => s.channels);
    const audio = config.audio;
    this.hasAudio = audio !== undefined && audio.enabled;
    this.mic = audio && audio.enabled ? new AlsaMic({ config: audio, clock, onFault: (f) => this.fault('sound', f) }) : undefined;
    this.button = config.button
      ? new GpioButton({ config: config.button, clock, onEvent: (e) => this.emit('button', e), onFault: (f) => this.fault(config.button?.name ?? 'button', f) })
      : undefined;
  }

  /** No single link to lose (each sensor is counted and retried on its own): connected from open to close. */
  get state(): DeviceState {
    return this.currentState;
  }

  async open(): Promise<void> {
    const { clock, config } = this.options;
    this.opened = true;
    for (const sensor of this.sensors) {
      sensor.onFault?.((fault) => this.fault(sensor.channels[0]?.name ?? sensor.describe, fault));
      await sensor.open?.();
      this.schedule(sensor);
    }
    const mic = this.mic;
    if (mic && config.audio) {
      await mic.open();
      const { interval, frameSeconds } = config.audio;
      let busy = false;
      const capture = async () => {
        if (busy) { this.count('skipped.sound'); return; }
        busy = true;
        try {
          const frame = await mic.capture(frameSeconds);
          if (!this.opened) return;
          if (this.failing.delete('sound')) this.count('recovered.sound');
          this.emit('audio', frame);
        } catch (err) {
          if (this.opened) this.fault('sound', err);
        } finally {
          busy = false;
        }
      };
      this.stops.push(clock.every(interval, () => void capture()));
    }
    await this.button?.open();
    this.setState('connected');
  }

  async close(): Promise<void> {
    this.opened = false;
    for (const stop of this.stops.splice(0)) stop();
    for (const sensor of this.sensors) await sensor.close?.();
    await this.mic?.close();
    await this.button?.close();
    this.setState('disconnected');
  }

  private setState(state: DeviceState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  stats(): Record<string, number> {
    return Object.fromEntries(this.counters);
  }

  private schedule(sensor: LinuxSensor): void {
    const { clock } = this.options;
    const context: SensorContext = {
      latest: (channel) => this.latest.get(channel),
      now: () => clock.now(),
      note: (counter, message) => {
        this.count(counter);
        this.emit('warning', new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, message));
      },
    };
    const name = sensor.channels[0]?.name ?? sensor.describe;
    let busy = false;
    const take = async () => {
      if (busy) { this.count(`skipped.${name}`); return; }
      busy = true;
      try {
        const values = await sensor.read(context);
        if (!this.opened) return;
        if (this.failing.delete(name)) this.count(`recovered.${name}`);
        for (const { channel, value } of values) {
          const spec = sensor.channels.find((c) => c.name === channel);
          const t = clock.now();
          const rounded = Number(value.toFixed((spec?.precision ?? 3) + 1));
          this.latest.set(channel, { value: rounded, t });
          this.emit('reading', { channel, value: rounded, unit: spec?.unit ?? '', t });
        }
      } catch (err) {
        if (this.opened) this.fault(name, err);
      } finally {
        busy = false;
      }
    };
    this.stops.push(clock.every(sensor.intervalMs, () => void take()));
    void take();
  }

  /** Counts a fault and reports it; a missing sensor once per disappearance. */
  private fault(name: string, err: unknown): void {
    const fault = err instanceof SensorFault ? err : new SensorFault('missing', err instanceof Error ? err.message : String(err), { cause: err });
    this.count(`${fault.kind}.${name}`);
    if (fault.kind === 'missing') {
      if (this.failing.has(name)) return;
      this.failing.add(name);
    }
    const code = fault.kind === 'missing' ? ErrorCodes.DEVICE_SENSOR_MISSING : ErrorCodes.DEVICE_DATA_INVALID;
    this.emit('warning', new ApiaryError(code, `${name}: ${fault.message}`, { hint: HINTS[fault.kind], cause: fault }));
  }

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }
}

function makeSensor(config: LinuxSensorConfig, sysfs: Sysfs, clock: Clock, openSerialPort: SerialOpener | undefined): LinuxSensor {
  switch (config.driver) {
    case 'ds18b20': return new Ds18b20(sysfs, config);
    case 'hwmon': return new Hwmon(sysfs, config);
    case 'iio': return new Iio(sysfs, config);
    case 'hx711-iio': case 'nau7802': return new LoadCell(sysfs, config);
    case 'serial-line': return new SerialLine(config, clock, openSerialPort);
  }
}
