/**
 * The Wyoming wire format (Home Assistant's voice protocol; github.com/rhasspy/wyoming,
 * README "Format" and wyoming/event.py): each event is
 *
 *   one JSON object on a line, UTF-8, ended by "\n": {type, data?, data_length?, payload_length?}
 *   then `data_length` bytes of a UTF-8 JSON object, merged over the header's `data`
 *   then `payload_length` bytes of binary payload (PCM audio for audio-chunk)
 *
 * Everything here comes from the network: the header line, the data and the
 * payload are each bounded before they are buffered, and anything malformed
 * ends the connection with a reason (never a throw out of the socket handler).
 */

export interface WyomingEvent {
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly payload?: Buffer;
}

export interface WyomingLimits {
  /** Longest header line, newline excluded. */
  readonly maxHeaderBytes: number;
  /** Largest extra data section. */
  readonly maxDataBytes: number;
  /** Largest payload of one event (one audio chunk). */
  readonly maxPayloadBytes: number;
}

export const DEFAULT_WYOMING_LIMITS: WyomingLimits = Object.freeze({ maxHeaderBytes: 8 * 1024, maxDataBytes: 64 * 1024, maxPayloadBytes: 256 * 1024 });

const TYPE = /^[a-z][a-z0-9-]{0,63}$/;
/** The protocol version we write in headers, as wyoming/event.py writes its own (it ignores the peer's). */
export const WYOMING_VERSION = '1.5.4';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function length(value: unknown, name: string, max: number): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new WyomingFormatError(`${name} ${JSON.stringify(value)} is not a byte count`);
  if (value > max) throw new WyomingFormatError(`${name} ${value} is over the limit of ${max} bytes`);
  return value;
}

export class WyomingFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WyomingFormatError';
  }
}

/** One event as bytes: the header line, then the data section, then the payload. */
export function encodeWyomingEvent(event: { type: string; data?: Record<string, unknown>; payload?: Buffer }): Buffer {
  const header: Record<string, unknown> = { type: event.type, version: WYOMING_VERSION };
  const parts: Buffer[] = [];
  const data = event.data && Object.keys(event.data).length > 0 ? Buffer.from(JSON.stringify(event.data), 'utf8') : undefined;
  if (data) header.data_length = data.length;
  if (event.payload && event.payload.length > 0) header.payload_length = event.payload.length;
  parts.push(Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'));
  if (data) parts.push(data);
  if (event.payload && event.payload.length > 0) parts.push(event.payload);
  return Buffer.concat(parts);
}

type Stage =
  | { readonly at: 'header' }
  | { readonly at: 'data'; readonly type: string; readonly data: Record<string, unknown>; readonly dataLength: number; readonly payloadLength: number }
  | { readonly at: 'payload'; readonly type: string; readonly data: Record<string, unknown>; readonly payloadLength: number };

/**
 * Incremental decoder: `push()` the bytes as they arrive and get the whole
 * events they complete. Throws WyomingFormatError on the first malformed or
 * oversized part; the caller closes the connection, since the stream cannot
 * be re-synchronised after a bad length.
 */
export class WyomingDecoder {
  private buffered: Buffer = Buffer.alloc(0);
  private stage: Stage = { at: 'header' };

  constructor(private readonly limits: WyomingLimits = DEFAULT_WYOMING_LIMITS) {}

  /** Bytes held for an event not yet complete (bounded by the limits). */
  get pendingBytes(): number {
    return this.buffered.length;
  }

  push(chunk: Buffer): WyomingEvent[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const events: WyomingEvent[] = [];
    for (;;) {
      const event = this.next();
      if (event === undefined) return events;
      events.push(event);
    }
  }

  private next(): WyomingEvent | undefined {
    const { stage } = this;
    if (stage.at === 'header') {
      const newline = this.buffered.indexOf(0x0a);
      if (newline < 0) {
        if (this.buffered.length > this.limits.maxHeaderBytes) throw new WyomingFormatError(`header line longer than ${this.limits.maxHeaderBytes} bytes`);
        return undefined;
      }
      if (newline > this.limits.maxHeaderBytes) throw new WyomingFormatError(`header line longer than ${this.limits.maxHeaderBytes} bytes`);
      const line = this.take(newline + 1).subarray(0, newline);
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(line));
      } catch {
        throw new WyomingFormatError('header line is not a UTF-8 JSON object');
      }
      if (!isObject(header)) throw new WyomingFormatError('header line is not a JSON object');
      const { type } = header;
      if (typeof type !== 'string' || !TYPE.test(type)) throw new WyomingFormatError(`event type ${JSON.stringify(type)} is not a lower-case name`);
      const data = header.data === undefined || header.data === null ? {} : header.data;
      if (!isObject(data)) throw new WyomingFormatError(`"data" of ${type} is not a JSON object`);
      const dataLength = length(header.data_length, 'data_length', this.limits.maxDataBytes);
      const payloadLength = length(header.payload_length, 'payload_length', this.limits.maxPayloadBytes);
      this.stage = dataLength > 0 ? { at: 'data', type, data, dataLength, payloadLength } : { at: 'payload', type, data, payloadLength };
      return this.next();
    }
    if (stage.at === 'data') {
      if (this.buffered.length < stage.dataLength) return undefined;
      let extra: unknown;
      try {
        extra = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(this.take(stage.dataLength)));
      } catch {
        throw new WyomingFormatError(`data section of ${stage.type} is not a UTF-8 JSON object`);
      }
      if (!isObject(extra)) throw new WyomingFormatError(`data section of ${stage.type} is not a JSON object`);
      // Merged over the header's data, as wyoming/event.py does.
      this.stage = { at: 'payload', type: stage.type, data: { ...stage.data, ...extra }, payloadLength: stage.payloadLength };
      return this.next();
    }
    if (this.buffered.length < stage.payloadLength) return undefined;
    const payload = stage.payloadLength > 0 ? Buffer.from(this.take(stage.payloadLength)) : undefined;
    this.stage = { at: 'header' };
    return payload ? { type: stage.type, data: stage.data, payload } : { type: stage.type, data: stage.data };
  }

  private take(n: number): Buffer {
    const head = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return head;
  }
}
