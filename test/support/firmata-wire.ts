/**
 * A serial line to a board running StandardFirmata 2.4, for firmata.js: the
 * real Firmata client (firmata-io, what johnny-five runs on a serial board)
 * talks the real protocol over it, and the far end answers for a simulated
 * board (SimulatedBeehiveIO: the SHT31-D, the load cell, the NACK replies, the
 * cable). So the Firmata path is tested down to the bytes on the wire: string
 * messages, I2C replies, analog messages, write callbacks and drain.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { IoPlugin } from '../../devices/drivers/board-link.js';
import type { SimulatedBeehiveIO } from '../../devices/io/simulated-beehive-io.js';

const START_SYSEX = 0xf0;
const END_SYSEX = 0xf7;
const I2C_REQUEST = 0x76;
const I2C_REPLY = 0x77;
const STRING_DATA = 0x71;
const QUERY_FIRMWARE = 0x79;
const SAMPLING_INTERVAL = 0x7a;
const REPORT_VERSION = 0xf9;
const ANALOG_MESSAGE = 0xe0;
const REPORT_ANALOG = 0xc0;
const UNO_ANALOG_PINS = [14, 15, 16, 17, 18, 19];

/** firmata.js's client on a transport of ours, as johnny-five would build it on a serial port. */
export function firmataClient(wire: FirmataWire): IoPlugin {
  const require = createRequire(import.meta.url);
  const { Firmata } = require('firmata-io') as { Firmata: new (transport: unknown, options: Record<string, unknown>) => IoPlugin };
  return new Firmata(wire, { skipCapabilities: true, analogPins: UNO_ANALOG_PINS, pinCount: 20, reportVersionTimeout: 2_000 });
}

const pairs = (bytes: readonly number[]) => bytes.flatMap((b) => [b & 0x7f, (b >> 7) & 0x7f]);
const unpair = (data: readonly number[]) => data.flatMap((_, i) => (i % 2 === 0 ? [((data[i] ?? 0) & 0x7f) | (((data[i + 1] ?? 0) & 0x7f) << 7)] : []));

export class FirmataWire extends EventEmitter {
  isOpen = false;
  /** Bytes the host wrote, in the order the board received them. */
  written = 0;
  private readonly held: { bytes: Buffer; done?: () => void }[] = [];
  private freeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly drains: (() => void)[] = [];
  private command: number[] = [];
  private readonly reporting = new Set<number>();

  /** Opens like a serial port: 'open', or 'error' when the board is not plugged in. */
  constructor(private readonly board: SimulatedBeehiveIO, plugged: () => boolean) {
    super();
    setImmediate(() => {
      if (!plugged()) { this.emit('error', new Error('Error: No such file or directory, cannot open /dev/ttyACM0')); return; }
      this.isOpen = true;
      board.on('close', () => this.lost());
      board.on('string', (text: string) => this.send([START_SYSEX, STRING_DATA, ...pairs([...Buffer.from(text)]), END_SYSEX]));
      board.open();
      this.emit('open');
      // StandardFirmata announces itself on start-up: its protocol version, then its name.
      this.send([REPORT_VERSION, 2, 4]);
      this.send([START_SYSEX, QUERY_FIRMWARE, 2, 4, ...pairs([...Buffer.from('StandardFirmata.ino')]), END_SYSEX]);
    });
  }

  /** The line carries nothing for `ms`: writes wait (firmata.js counts them as pending), then arrive in order. */
  stall(ms: number): void {
    this.freeAt = Math.max(this.freeAt, performance.now() + ms);
  }

  write(data: Buffer | number[], done?: () => void): boolean {
    this.held.push({ bytes: Buffer.from(data), done });
    this.flush();
    return true;
  }

  drain(callback: () => void): void {
    if (this.held.length === 0) setImmediate(callback);
    else this.drains.push(callback);
  }

  close(callback?: () => void): void {
    this.isOpen = false;
    clearTimeout(this.timer);
    this.board.close();
    setImmediate(() => { this.emit('close'); callback?.(); });
  }

  private flush(): void {
    if (this.timer) return;
    const wait = this.freeAt - performance.now();
    if (wait > 0) { this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, wait); return; }
    for (const { bytes, done } of this.held.splice(0)) {
      if (this.isOpen) for (const byte of bytes) this.receive(byte);
      done?.();
    }
    for (const callback of this.drains.splice(0)) callback();
  }

  /** The cable was pulled: serialport reports the port closed (a DisconnectedError). */
  private lost(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.emit('close', Object.assign(new Error('port disconnected'), { disconnected: true }));
  }

  private send(bytes: number[]): void {
    setImmediate(() => { if (this.isOpen) this.emit('data', Buffer.from(bytes)); });
  }

  /** The firmware's command parser: sysex, and the few MIDI-style commands firmata.js sends. */
  private receive(byte: number): void {
    this.written++;
    const command = this.command;
    if (byte === START_SYSEX || (byte >= 0x80 && command[0] !== START_SYSEX)) command.length = 0;
    command.push(byte);
    const [first = 0] = command;
    if (first === START_SYSEX) {
      if (byte === END_SYSEX) { this.sysex(command[1] ?? 0, command.slice(2, -1)); command.length = 0; }
      return;
    }
    const length = (first & 0xf0) === REPORT_ANALOG || (first & 0xf0) === 0xd0 ? 2 : first === 0xf4 || (first & 0xf0) === 0x90 || (first & 0xf0) === 0xe0 ? 3 : 1;
    if (command.length < length) return;
    if ((first & 0xf0) === REPORT_ANALOG) this.reportAnalog(first & 0x0f, command[1] === 1);
    if (first === REPORT_VERSION) this.send([REPORT_VERSION, 2, 4]);
    command.length = 0;
  }

  private sysex(kind: number, data: number[]): void {
    if (kind === SAMPLING_INTERVAL) this.board.setSamplingInterval(unpair(data)[0] ?? 19);
    if (kind !== I2C_REQUEST) return;
    const [address = 0, mode = 0] = data;
    const words = unpair(data.slice(2));
    const rw = (mode >> 3) & 0x03;
    if (rw === 0) this.board.i2cWrite(address, words);
    if (rw === 1) {
      const [register, length] = words.length >= 2 ? words : [0, words[0] ?? 0];
      // StandardFirmata replies with the register it read, 0 when none was named.
      this.board.i2cReadOnce(address, length ?? 0, (reply: number[]) => {
        this.send([START_SYSEX, I2C_REPLY, address & 0x7f, address >> 7, (register ?? 0) & 0x7f, (register ?? 0) >> 7, ...pairs(reply), END_SYSEX]);
      });
    }
  }

  private reportAnalog(channel: number, on: boolean): void {
    this.board.reportAnalogPin(channel, on ? 1 : 0);
    if (!on || this.reporting.has(channel)) return;
    this.reporting.add(channel);
    this.board.analogRead(channel, (value) => this.send([ANALOG_MESSAGE | channel, value & 0x7f, (value >> 7) & 0x7f]));
  }
}
