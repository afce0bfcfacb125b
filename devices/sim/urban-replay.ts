/**
 * Replays real in-hive temperature and humidity from the UrBAN dataset
 * (hive 3690, Montréal, 2021; CC BY 4.0, see data/urban-beehive/README.md).
 * Node time is mapped onto the recorded season keeping the time of day, so
 * the day/night rhythm of the real colony lines up with the node's clock.
 */
import { readFile } from 'node:fs/promises';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import { packagePath } from '../../runtime/package-root.js';

export const URBAN_HIVE_FILE = packagePath('devices', 'sim', 'data', 'urban-beehive', 'hive-3690-2021.csv');
const DAY_MS = 86_400_000;
/** Gaps longer than this in the recording are bridged, but flagged for callers that care. */
const MAX_INTERPOLATION_GAP_MS = 2 * 3_600_000;

export interface ClimateSample {
  readonly temperature: number;
  readonly humidity: number;
}

export class UrbanReplay {
  private times = new Float64Array(0);
  private temperatures = new Float32Array(0);
  private humidities = new Float32Array(0);
  /** Rows of the file that failed validation (counted, skipped). */
  rejectedRows = 0;

  constructor(private readonly file: string = URBAN_HIVE_FILE) {}

  async open(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `cannot read the hive recording ${this.file}`, {
        hint: 'reinstall Apiary: the simulated beehive ships this file', cause: err,
      });
    }
    this.parse(text);
  }

  private parse(text: string): void {
    // Hand-rolled rather than split/map: this runs on every start-up, before the first reading.
    const times: number[] = [];
    const temps: number[] = [];
    const hums: number[] = [];
    let lineStart = text.indexOf('\n') + 1; // skip the header
    while (lineStart > 0 && lineStart < text.length) {
      let lineEnd = text.indexOf('\n', lineStart);
      if (lineEnd < 0) lineEnd = text.length;
      const comma1 = text.indexOf(',', lineStart);
      const comma2 = comma1 < 0 ? -1 : text.indexOf(',', comma1 + 1);
      if (lineEnd > lineStart) {
        const valid = comma1 > lineStart && comma2 > comma1 && comma2 < lineEnd;
        const t = valid ? Number(text.slice(lineStart, comma1)) * 1000 : Number.NaN;
        const temp = valid ? Number(text.slice(comma1 + 1, comma2)) : Number.NaN;
        const hum = valid ? Number(text.slice(comma2 + 1, lineEnd)) : Number.NaN;
        if (Number.isFinite(t) && temp > -20 && temp < 60 && hum >= 0 && hum <= 100 && (times.length === 0 || t > (times.at(-1) ?? 0))) {
          times.push(t);
          temps.push(temp);
          hums.push(hum);
        } else {
          this.rejectedRows++;
        }
      }
      lineStart = lineEnd + 1;
    }
    if (times.length < 2) {
      throw new ApiaryError(ErrorCodes.DEVICE_DATA_INVALID, `the hive recording ${this.file} has fewer than 2 valid rows`);
    }
    this.times = Float64Array.from(times);
    this.temperatures = Float32Array.from(temps);
    this.humidities = Float32Array.from(hums);
  }

  /** Whole days of recording, so wrapping around keeps the time of day. */
  private get spanMs(): number {
    const first = this.times[0] ?? 0;
    const last = this.times[this.times.length - 1] ?? 0;
    return Math.max(DAY_MS, Math.floor((last - first) / DAY_MS) * DAY_MS);
  }

  /** Maps node time to recording time: same time of day, day of season from `origin`. */
  recordingTime(nodeTime: number, origin: number): number {
    const first = this.times[0] ?? 0;
    const firstMidnight = Math.floor(first / DAY_MS) * DAY_MS + DAY_MS; // first whole day
    const originMidnight = Math.floor(origin / DAY_MS) * DAY_MS;
    const offset = ((nodeTime - originMidnight) % this.spanMs + this.spanMs) % this.spanMs;
    return firstMidnight + offset;
  }

  /** Linear interpolation between the two recorded samples around `recordingTime`. */
  sampleAt(recordingTime: number): ClimateSample & { gap: boolean } {
    const times = this.times;
    let lo = 0;
    let hi = times.length - 1;
    if (recordingTime <= (times[0] ?? 0)) hi = 0;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((times[mid] ?? 0) <= recordingTime) lo = mid; else hi = mid;
    }
    const t0 = times[lo] ?? 0;
    const t1 = times[hi] ?? t0;
    const w = t1 > t0 ? Math.min(1, Math.max(0, (recordingTime - t0) / (t1 - t0))) : 0;
    const lerp = (a: Float32Array) => (a[lo] ?? 0) * (1 - w) + (a[hi] ?? 0) * w;
    return { temperature: lerp(this.temperatures), humidity: lerp(this.humidities), gap: t1 - t0 > MAX_INTERPOLATION_GAP_MS };
  }

  get rows(): number {
    return this.times.length;
  }
}
