/**
 * The `device.linux` section: a board whose sensors are read through the
 * Linux kernel's own drivers (sysfs, ALSA, the GPIO character device, serial
 * ports). A list of sensors, each a driver with its own settings, plus an
 * optional microphone and push button. devices/config.ts composes it.
 */
import { z } from 'zod';
import { duration } from '../../runtime/config/units.js';
import type { DeepReadonly } from '../../runtime/deep-freeze.js';

const channelName = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, {
  error: 'expected a channel name of lower-case letters, digits and "_" (like "temperature" or "brood_temp"), starting with a letter',
});
const range = z.tuple([z.number(), z.number()], { error: 'expected [min, max], two numbers' })
  .refine(([min, max]) => min < max, { error: 'expected [min, max] with min below max' });

/** Fields every sensor has: which channel it feeds and how often it is read. */
const common = {
  /** Channel name (topic, stream and rule input `reading.<channel>`); each driver has a default. */
  channel: channelName.optional(),
  label: z.string().min(1).max(60).optional(),
  interval: duration(100).prefault('1m'),
};

const ds18b20 = z.strictObject({
  driver: z.literal('ds18b20'),
  ...common,
  /** 1-Wire id (`28-0316a2795bff`); omitted = the only DS18B20 on the bus. */
  id: z.string().regex(/^28-[0-9a-f]{12}$/, { error: 'expected a DS18B20 1-Wire id like "28-0316a2795bff" (ls /sys/bus/w1/devices/)' }).optional(),
});

const hwmon = z.strictObject({
  driver: z.literal('hwmon'),
  ...common,
  /** The hwmon device's `name` attribute (`sht3x`, `sht4x`, `htu21`, ...). */
  name: z.string().min(1).default('sht3x'),
  quantity: z.enum(['temperature', 'humidity'], { error: 'expected "temperature" or "humidity" (hwmon temp1_input / humidity1_input)' }),
  /** Which of several devices with the same name (0 = the first, by hwmonN order). */
  index: z.number().int().min(0).max(15).default(0),
  /** Values outside are refused; default: the SHT3x datasheet's ranges. */
  range: range.optional(),
});

const iio = z.strictObject({
  driver: z.literal('iio'),
  ...common,
  /** The IIO device's `name` attribute (`bme280`, `bmp280`, `dht11`, ...). */
  name: z.string().min(1).default('bme280'),
  quantity: z.enum(['temperature', 'humidity', 'pressure'], { error: 'expected "temperature", "humidity" or "pressure" (in_temp / in_humidityrelative / in_pressure)' }),
  index: z.number().int().min(0).max(15).default(0),
  /** Values outside are refused; default: the BME280 datasheet's operating ranges. */
  range: range.optional(),
});

const loadCell = {
  ...common,
  index: z.number().int().min(0).max(15).default(0),
  /** ADC input: in_voltage<adcChannel>_raw (0 = channel A of an HX711, VIN1 of a NAU7802). */
  adcChannel: z.number().int().min(0).max(1).default(0),
  /** kg = offsetKg + counts * kgPerCount (counts are signed: 0 = no differential input). */
  kgPerCount: z.number().refine((v) => v !== 0 && Math.abs(v) <= 10, { error: 'expected a non-zero scale of at most 10 kg per count: calibrate with a known weight' }).default(0.00005),
  offsetKg: z.number().min(-100_000).max(100_000).default(0),
  /** Raw samples taken per reading; the reading is their median. */
  samples: z.number().int().min(1).max(25).default(5),
  /** Weights outside are refused (a broken wire or a fallen hive). */
  rangeKg: range.default([-10, 300]),
  /** Load cells drift with temperature: kg -= kgPerDegree * (T - referenceC), T from another channel. */
  compensation: z.strictObject({
    channel: channelName,
    kgPerDegree: z.number().min(-10).max(10),
    referenceC: z.number().min(-40).max(60).default(20),
    /** An older temperature is not used (the weight is then published uncompensated, and counted). */
    maxAge: duration(1_000).prefault('10m'),
  }).optional(),
};
const hx711 = z.strictObject({ driver: z.literal('hx711-iio'), ...loadCell });
const nau7802 = z.strictObject({ driver: z.literal('nau7802'), ...loadCell });

const serialLine = z.strictObject({
  driver: z.literal('serial-line'),
  ...common,
  port: z.string().min(1, { error: 'expected a serial port path like "/dev/ttyUSB0"' }),
  baudRate: z.number().int().min(300).max(4_000_000).default(9600),
  /** `key=value` lines: the key to take (default: the channel name). */
  key: z.string().min(1).optional(),
  /** Or a regular expression whose first group is the number (`^CO2 (\d+) ppm`). */
  pattern: z.string().min(1).refine((p) => { try { return new RegExp(p).source.includes('(') } catch { return false; } }, { error: 'expected a valid regular expression with a group around the number' }).optional(),
  unit: z.string().max(12).default(''),
  /** value = raw * scale + offset. */
  scale: z.number().default(1),
  offset: z.number().default(0),
  range: range.default([-1e9, 1e9]),
  precision: z.number().int().min(0).max(6).default(2),
}).refine((s) => !(s.key !== undefined && s.pattern !== undefined), { error: 'give either "key" or "pattern", not both', path: ['pattern'] });

export const linuxSensorSchema = z.discriminatedUnion('driver', [ds18b20, hwmon, iio, hx711, nau7802, serialLine], {
  error: 'expected "driver" to be one of "ds18b20", "hwmon", "iio", "hx711-iio", "nau7802" or "serial-line"',
});

const audioSchema = z.strictObject({
  driver: z.literal('alsa', { error: 'expected "alsa" (the only microphone driver)' }),
  enabled: z.boolean().default(true),
  /** ALSA capture device (`arecord -L`); `plughw:` converts rate and format in ALSA. */
  device: z.string().min(1).default('default'),
  /** Rate asked of arecord; frames are decimated (low-pass filtered) to `sampleRate`. */
  captureRate: z.number().int().min(2_000).max(192_000).default(44_100),
  /** Rate of the frames the node analyses (the beehive models need 2205 Hz). */
  sampleRate: z.number().int().min(1_000).max(48_000).default(2_205),
  format: z.enum(['S16_LE', 'S32_LE'], { error: 'expected "S16_LE" or "S32_LE" (I2S microphones often give only S32_LE on hw: devices)' }).default('S16_LE'),
  interval: duration(1_000).prefault('10s'),
  frameSeconds: z.number().min(1).max(10).default(1),
  /** The arecord program (a path, or a name looked up in PATH). */
  command: z.string().min(1).default('arecord'),
}).refine((a) => a.captureRate % a.sampleRate === 0, { error: 'expected captureRate to be a whole multiple of sampleRate (44100 = 20 x 2205)', path: ['captureRate'] });

const buttonSchema = z.strictObject({
  /** GPIO chip (`gpiochip0` on a Raspberry Pi's header; `gpiodetect` lists them). */
  chip: z.string().regex(/^(gpiochip\d+|\d+|\/dev\/gpiochip\d+)$/, { error: 'expected a GPIO chip like "gpiochip0" (gpiodetect lists them)' }).default('gpiochip0'),
  /** Line offset on the chip (the BCM GPIO number on a Raspberry Pi). */
  line: z.number().int().min(0).max(511),
  /** A button to ground with the pull-up on: pressed = low. */
  activeLow: z.boolean().default(true),
  bias: z.enum(['pull-up', 'pull-down', 'disabled', 'as-is']).default('pull-up'),
  /** Edges closer than this to the last one are contact bounce, and ignored. */
  debounce: duration(0, 1_000).prefault('30ms'),
  /** Name carried by the button events. */
  name: channelName.default('button'),
  command: z.string().min(1).default('gpiomon'),
});

export const linuxSchema = z.strictObject({
  /** Root of the sysfs and /dev tree: "/" on a board; tests point it at a fake tree. */
  root: z.string().min(1).default('/'),
  sensors: z.array(linuxSensorSchema).max(32).default([]),
  audio: audioSchema.optional(),
  button: buttonSchema.optional(),
}).superRefine((linux, ctx) => {
  const seen = new Map<string, number>();
  linux.sensors.forEach((sensor, i) => {
    const name = sensorChannel(sensor);
    const first = seen.get(name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['sensors', i, 'channel'], message: `channel "${name}" is also read by sensors[${first}]: give each sensor its own "channel"` });
    }
    seen.set(name, i);
  });
  linux.sensors.forEach((sensor, i) => {
    if ((sensor.driver === 'hx711-iio' || sensor.driver === 'nau7802') && sensor.compensation && !seen.has(sensor.compensation.channel)) {
      ctx.addIssue({ code: 'custom', path: ['sensors', i, 'compensation', 'channel'], message: `no sensor feeds channel "${sensor.compensation.channel}": name one of ${[...seen.keys()].map((k) => `"${k}"`).join(', ')}` });
    }
  });
});

export type LinuxConfig = DeepReadonly<z.output<typeof linuxSchema>>;
export type LinuxSensorConfig = LinuxConfig['sensors'][number];
export type LinuxAudioConfig = NonNullable<LinuxConfig['audio']>;
export type LinuxButtonConfig = NonNullable<LinuxConfig['button']>;

/** The channel a sensor feeds: its `channel`, or the driver's default. */
export function sensorChannel(sensor: z.output<typeof linuxSensorSchema> | LinuxSensorConfig): string {
  if (sensor.channel !== undefined) return sensor.channel;
  switch (sensor.driver) {
    case 'ds18b20': return 'temperature';
    case 'hwmon': case 'iio': return sensor.quantity;
    case 'hx711-iio': case 'nau7802': return 'weight';
    case 'serial-line': return sensor.key ?? 'serial';
  }
}
