/**
 * The sensor node's one extension: the dew point of the air from each
 * temperature and the last humidity reading, and how far above it the air
 * is (the margin a condensation rule watches), as two derived channels.
 *
 * Magnus formula with Sonntag's (1990) coefficients over water, as in WMO
 * Guide to Meteorological Instruments (WMO-No. 8, 2018), Annex 4.B:
 *   gamma = ln(RH/100) + b*T / (c + T);  Td = c*gamma / (b - gamma)
 *   b = 17.62, c = 243.12 °C; within 0.35 °C for -45 °C <= T <= 60 °C.
 */
import type { Reading } from '../../../devices/device.js';
import type { Extension } from '../../core/extension.js';

const B = 17.62;
const C = 243.12;

export const DEW_POINT_CHANNEL = { name: 'dew_point', unit: '°C', label: 'Dew point', deviceClass: 'temperature', precision: 1 } as const;
export const DEW_POINT_MARGIN_CHANNEL = { name: 'dew_point_margin', unit: '°C', label: 'Above dew point', precision: 1 } as const;

/** Dew point in °C of air at `celsius` and `relativeHumidity` percent; undefined outside the formula's range. */
export function dewPoint(celsius: number, relativeHumidity: number): number | undefined {
  // Written as ranges that hold, so a NaN reading is out of range too.
  if (!(relativeHumidity > 0 && relativeHumidity <= 100) || !(celsius >= -45 && celsius <= 60)) return undefined;
  const gamma = Math.log(relativeHumidity / 100) + (B * celsius) / (C + celsius);
  return (C * gamma) / (B - gamma);
}

export function createDewPoint(): Extension {
  return {
    name: 'dew-point',
    start(ctx) {
      ctx.addChannel(DEW_POINT_CHANNEL);
      ctx.addChannel(DEW_POINT_MARGIN_CHANNEL);
      let humidity: number | undefined;
      ctx.events.on('reading', async (reading) => {
        if (reading.channel === 'humidity') humidity = reading.value;
        if (reading.channel !== 'temperature' || humidity === undefined) return;
        const td = dewPoint(reading.value, humidity);
        if (td === undefined) {
          ctx.counters.increment('dew_point.out_of_range');
          return;
        }
        const derived: Reading[] = [
          { channel: DEW_POINT_CHANNEL.name, value: round2(td), unit: DEW_POINT_CHANNEL.unit, t: reading.t },
          { channel: DEW_POINT_MARGIN_CHANNEL.name, value: round2(reading.value - td), unit: DEW_POINT_MARGIN_CHANNEL.unit, t: reading.t },
        ];
        for (const r of derived) await ctx.events.emit('reading', r);
      });
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  };
}

const round2 = (value: number) => Math.round(value * 100) / 100;
