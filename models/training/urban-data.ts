/**
 * Reads the UrBAN beehive CSVs that `npm run train` learns from (the in-repo
 * copy in models/training/data/urban-beehive/, see its README), strictly:
 * every malformed row is an error that names the file and the line.
 *
 * - sensor_2021.csv: in-hive temperature and humidity per hive, ~15 min apart.
 *   Deduplicated per hive: a reading less than DEDUP_MS after the previous
 *   kept one is dropped (hives 3629 and 3692 log many near-duplicates).
 * - inspections_2021.csv: the beekeepers' inspections (the labels), with the
 *   local open/close times used to mask the disturbed readings.
 * - weather_2021_2022.csv: hourly outside weather (only for an ablation: the
 *   node has no outside sensor).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';

export const SENSOR_FILE = 'sensor_2021.csv';
export const INSPECTIONS_FILE = 'inspections_2021.csv';
export const WEATHER_FILE = 'weather_2021_2022.csv';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
/** Readings closer than this to the previous kept reading of the same hive are duplicates. */
export const DEDUP_MS = 5 * MINUTE_MS;
/**
 * Inspection times are Montréal wall-clock time. Every inspection and sensor
 * day used is between 2021-03-14 and 2021-11-07, i.e. in EDT (UTC-4);
 * inspectionsFrom checks that.
 */
export const LOCAL_UTC_OFFSET_H = -4;
const EDT_2021 = { from: Date.UTC(2021, 2, 14, 7), to: Date.UTC(2021, 10, 7, 6) };
/** The weather file is in local standard time (EST, UTC-5) all year. */
const WEATHER_UTC_OFFSET_H = -5;

export interface SensorReading {
  readonly hive: number;
  /** ms since the epoch (UTC) */
  readonly t: number;
  readonly temperature: number;
  readonly humidity: number;
}

export interface Inspection {
  readonly hive: number;
  /** The inspection day as `YYYY-MM-DD` (local). */
  readonly date: string;
  /** Local midnight of the inspection day, as ms since the epoch. */
  readonly dayStart: number;
  /** Sum of the frames of bees over all boxes (Fob 1st + 2nd + 3rd). */
  readonly framesOfBees: number;
  /** When the hive was open (ms since the epoch); undefined when the file gives no times. */
  readonly open: number | undefined;
  readonly close: number | undefined;
  readonly queenStatus: string;
  readonly line: number;
}

export interface WeatherHour {
  /** Start of the hour, ms since the epoch (UTC). */
  readonly t: number;
  readonly temperature: number;
}

function dataError(file: string, line: number, message: string): ApiaryError {
  return new ApiaryError(ErrorCodes.TRAINING_DATA_INVALID, `${file}:${line}: ${message}`, {
    hint: `fix or restore ${path.basename(file)} (the copy in models/training/data/urban-beehive/ is the reference), or point --data at a directory with valid UrBAN CSVs`,
  });
}

/** Splits one CSV line (RFC 4180 quotes, no embedded newlines). */
export function splitCsvLine(text: string, file: string, line: number): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) throw dataError(file, line, 'unterminated quoted field');
  fields.push(field);
  return fields;
}

/** Rows of a CSV as header-name -> value, each with its 1-based line number; checks the header. */
async function readCsv(file: string, expectedHeader: readonly string[]): Promise<{ line: number; get: (name: string) => string }[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ApiaryError(ErrorCodes.TRAINING_DATA_INVALID, `cannot read ${file}: ${(cause as Error).message}`, {
      hint: 'run from the repository (the data ship in models/training/data/urban-beehive/), or pass --data <dir> with the UrBAN CSVs',
      cause,
    });
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = splitCsvLine(lines[0] ?? '', file, 1);
  if (header.length !== expectedHeader.length || header.some((h, i) => h !== expectedHeader[i])) {
    throw dataError(file, 1, `header is "${header.join(',')}", expected "${expectedHeader.join(',')}"`);
  }
  const rows: { line: number; get: (name: string) => string }[] = [];
  lines.slice(1).forEach((raw, i) => {
    const line = i + 2;
    if (raw.trim() === '') return;
    const fields = splitCsvLine(raw, file, line);
    if (fields.length !== header.length) throw dataError(file, line, `has ${fields.length} fields, expected ${header.length} (${header.join(',')})`);
    rows.push({
      line,
      get: (name) => {
        const j = header.indexOf(name);
        return fields[j] ?? '';
      },
    });
  });
  if (rows.length === 0) throw dataError(file, 2, 'has no data rows');
  return rows;
}

function numberField(file: string, line: number, name: string, value: string, options: { optional?: boolean } = {}): number | undefined {
  if (value.trim() === '' && options.optional) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw dataError(file, line, `${name} is "${value}", expected a number`);
  return n;
}

function requiredNumber(file: string, line: number, name: string, value: string): number {
  return numberField(file, line, name, value) ?? Number.NaN;
}

/** `2021-06-19 00:04:58+00:00` -> ms since the epoch. */
function parseUtcTimestamp(file: string, line: number, value: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\+00:00$/.exec(value);
  const t = m ? Date.parse(`${m[1]}T${m[2]}Z`) : Number.NaN;
  if (!Number.isFinite(t)) throw dataError(file, line, `Date is "${value}", expected "YYYY-MM-DD HH:MM:SS+00:00"`);
  return t;
}

/** Local date + optional `HH:MM[:SS]` -> ms since the epoch, at the given UTC offset. */
function parseLocal(file: string, line: number, date: string, time: string, offsetH: number): number {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const h = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(time);
  if (!d || !h) throw dataError(file, line, `date/time "${date} ${time}" is not "YYYY-MM-DD HH:MM[:SS]"`);
  const t = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(h[1]) - offsetH, Number(h[2]), Number(h[3] ?? 0));
  if (!Number.isFinite(t)) throw dataError(file, line, `date/time "${date} ${time}" is not a valid time`);
  return t;
}

/** In-hive readings, grouped by hive, sorted by time and deduplicated. */
export async function readSensorData(dir: string): Promise<Map<number, SensorReading[]>> {
  const file = path.join(dir, SENSOR_FILE);
  const rows = await readCsv(file, ['Date', 'Tag number', 'temperature', 'humidity']);
  const byHive = new Map<number, SensorReading[]>();
  for (const row of rows) {
    const hive = requiredNumber(file, row.line, 'Tag number', row.get('Tag number'));
    const reading: SensorReading = {
      hive,
      t: parseUtcTimestamp(file, row.line, row.get('Date')),
      temperature: requiredNumber(file, row.line, 'temperature', row.get('temperature')),
      humidity: requiredNumber(file, row.line, 'humidity', row.get('humidity')),
    };
    if (reading.temperature < -40 || reading.temperature > 60) throw dataError(file, row.line, `temperature ${reading.temperature} °C is outside -40..60`);
    if (reading.humidity < 0 || reading.humidity > 100) throw dataError(file, row.line, `humidity ${reading.humidity} % is outside 0..100`);
    const list = byHive.get(hive) ?? [];
    list.push(reading);
    byHive.set(hive, list);
  }
  const out = new Map<number, SensorReading[]>();
  for (const hive of [...byHive.keys()].sort((a, b) => a - b)) {
    // Stable sort by time, then keep the first of each near-duplicate run.
    const sorted = (byHive.get(hive) ?? []).slice().sort((a, b) => a.t - b.t);
    const kept: SensorReading[] = [];
    for (const r of sorted) {
      const last = kept.at(-1);
      if (last && r.t - last.t < DEDUP_MS) continue;
      kept.push(r);
    }
    out.set(hive, kept);
  }
  return out;
}

/** Inspections with their frames of bees; rows without any frames-of-bees value are an error. */
export async function readInspections(dir: string): Promise<Inspection[]> {
  const file = path.join(dir, INSPECTIONS_FILE);
  const rows = await readCsv(file, ['Date', 'Tag number', 'Colony Size', 'Fob 1st', 'Fob 2nd', 'Fob 3rd', 'FoBrood', 'Queen status', 'Frames of Honey', 'Open', 'Close', 'Notes']);
  return rows.map((row) => {
    const date = row.get('Date');
    const dayStart = parseLocal(file, row.line, date, '00:00', LOCAL_UTC_OFFSET_H);
    if (dayStart < EDT_2021.from || dayStart > EDT_2021.to) {
      throw dataError(file, row.line, `inspection date ${date} is outside 2021 daylight-saving time (EDT), which the masking assumes`);
    }
    const fob = ['Fob 1st', 'Fob 2nd', 'Fob 3rd'].map((name) => numberField(file, row.line, name, row.get(name), { optional: true }));
    if (fob.every((v) => v === undefined)) throw dataError(file, row.line, 'has no frames of bees (Fob 1st/2nd/3rd are all empty)');
    const openText = row.get('Open').trim();
    const closeText = row.get('Close').trim();
    let open: number | undefined;
    let close: number | undefined;
    if (openText !== '' || closeText !== '') {
      const a = parseLocal(file, row.line, date, openText, LOCAL_UTC_OFFSET_H);
      const b = parseLocal(file, row.line, date, closeText, LOCAL_UTC_OFFSET_H);
      // One row (3692, 2021-08-10) has Close a minute before Open: take the span either way.
      open = Math.min(a, b);
      close = Math.max(a, b);
    }
    return {
      hive: requiredNumber(file, row.line, 'Tag number', row.get('Tag number')),
      date,
      dayStart,
      framesOfBees: fob.reduce<number>((acc, v) => acc + (v ?? 0), 0),
      open,
      close,
      queenStatus: row.get('Queen status').trim(),
      line: row.line,
    };
  });
}

/** Hourly outside temperature; hours with an empty temperature are skipped. */
export async function readWeather(dir: string): Promise<WeatherHour[]> {
  const file = path.join(dir, WEATHER_FILE);
  const rows = await readCsv(file, ['Date/Time (LST)', 'Temp (°C)', 'Rel Hum (%)', 'Precip. Amount (mm)']);
  const out: WeatherHour[] = [];
  for (const row of rows) {
    const [date = '', time = ''] = row.get('Date/Time (LST)').split(' ');
    const t = parseLocal(file, row.line, date, time, WEATHER_UTC_OFFSET_H);
    const temperature = numberField(file, row.line, 'Temp (°C)', row.get('Temp (°C)'), { optional: true });
    if (temperature !== undefined) out.push({ t, temperature });
  }
  return out.sort((a, b) => a.t - b.t);
}

export const TIME = { MINUTE_MS, HOUR_MS } as const;
