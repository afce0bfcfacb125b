/**
 * A serial line to a board running StandardFirmata 2.4, for firmata.js: the
 * real Firmata client (firmata-io, what johnny-five runs on a serial board)
 * talks the real protocol over it, and the far end answers for a simulated
 * board (SimulatedBeehiveIO: the SHT31-D, the load cell, the NACK replies, the
 * cable). So the Firmata path is tested down to the bytes on the wire: string
 * messages, I2C replies, analog messages, write callbacks and drain.
 * StandardFirmata (the board end) also answers over serialport's mock binding
 * (firmata-serial-mock.ts).
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
const CAPABILITY_QUERY = 0x6b;
const CAPABILITY_RESPONSE = 0x6c;
const ANALOG_MAPPING_QUERY = 0x69;
const ANALOG_MAPPING_RESPONSE = 0x6a;
const UNO_ANALOG_PINS = [14, 15, 16, 17, 18, 19];
const UNO_PIN_COUNT = 20;

/** firmata.js's client on a transport of ours, as johnny-five would build it on a serial port. */
export function firmataClient(wire: FirmataWire): IoPlugin {
  const require = createRequire(import.meta.url);
  const { Firmata } = require('firmata-io') as { Firmata: new (transport: unknown, options: Record<string, unknown>) => IoPlugin };
  return new Firmata(wire, { skipCapabilities: true, analogPins: UNO_ANALOG_PINS, pinCount: 20, reportVersionTimeout: 2_000 });
}

const pairs = (bytes: readonly number[]) => bytes.flatMap((b) => [b & 0x7f, (b >> 7) & 0x7f]);
const unpair = (data: readonly number[]) => data.flatMap((_, i) => (i % 2 === 0 ? [((data[i] ?? 0) & 0x7f) | (((data[i + 1] ?? 0) & 0x7f) << 7)] : []));

/**
 * The board end of the line: StandardFirmata 2.4's command parser and replies, for a simulated
 * board. `send` carries bytes to the host; they leave on a later turn, as a UART's would.
 */
export class StandardFirmata {
  private command: number[] = [];
  private readonly reporting = new Set<number>();
  private running = false;

  constructor(private readonly board: SimulatedBeehiveIO, private readonly send: (bytes: Buffer) => void) {}

  /** Starts the board (the port opened and reset it): it announces its protocol version, then its name. */
  start(): void {
    this.running = true;
    this.board.on('string', (text: string) => this.reply([START_SYSEX, STRING_DATA, ...pairs([...Buffer.from(text)]), END_SYSEX]));
    this.board.open();
    this.reply([REPORT_VERSION, 2, 4]);
    this.reply([START_SYSEX, QUERY_FIRMWARE, 2, 4, ...pairs([...Buffer.from('StandardFirmata.ino')]), END_SYSEX]);
  }

  /** The port closed or the cable went: nothing more leaves the board. */
  stop(): void {
    this.running = false;
  }

  /** Bytes from the host, in order. */
  receive(bytes: Iterable<number>): void {
    for (const byte of bytes) this.receiveByte(byte);
  }

  private reply(bytes: number[]): void {
    setImmediate(() => { if (this.running) this.send(Buffer.from(bytes)); });
  }

  /** The firmware's command parser: sysex, and the few MIDI-style commands firmata.js sends. */
  private receiveByte(byte: number): void {
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
    if (first === REPORT_VERSION) this.reply([REPORT_VERSION, 2, 4]);
    command.length = 0;
  }

  private sysex(kind: number, data: number[]): void {
    if (kind === SAMPLING_INTERVAL) this.board.setSamplingInterval(unpair(data)[0] ?? 19);
    // An Uno's pins: digital in/out/pull-up on all, analog (10 bits) on A0..A5, I2C on A4/A5 (18, 19).
    if (kind === CAPABILITY_QUERY) {
      const pins = Array.from({ length: UNO_PIN_COUNT }, (_, pin) => [0, 1, 1, 1, 0x0b, 1, ...(UNO_ANALOG_PINS.includes(pin) ? [2, 10] : []), ...(pin >= 18 ? [6, 1] : []), 0x7f]);
      this.reply([START_SYSEX, CAPABILITY_RESPONSE, ...pins.flat(), END_SYSEX]);
    }
    if (kind === ANALOG_MAPPING_QUERY) {
      this.reply([START_SYSEX, ANALOG_MAPPING_RESPONSE, ...Array.from({ length: UNO_PIN_COUNT }, (_, pin) => (UNO_ANALOG_PINS.includes(pin) ? pin - 14 : 127)), END_SYSEX]);
    }
    if (kind !== I2C_REQUEST) return;
    const [address = 0, mode = 0] = data;
    const words = unpair(data.slice(2));
    const rw = (mode >> 3) & 0x03;
    if (rw === 0) this.board.i2cWrite(address, words);
    if (rw === 1) {
      const [register, length] = words.length >= 2 ? words : [0, words[0] ?? 0];
      // StandardFirmata replies with the register it read, 0 when none was named.
      this.board.i2cReadOnce(address, length ?? 0, (reply: number[]) => {
        this.reply([START_SYSEX, I2C_REPLY, address & 0x7f, address >> 7, (register ?? 0) & 0x7f, (register ?? 0) >> 7, ...pairs(reply), END_SYSEX]);
      });
    }
  }

  private reportAnalog(channel: number, on: boolean): void {
    this.board.reportAnalogPin(channel, on ? 1 : 0);
    if (!on || this.reporting.has(channel)) return;
    this.reporting.add(channel);
    this.board.analogRead(channel, (value) => this.reply([ANALOG_MESSAGE | channel, value & 0x7f, (value >> 7) & 0x7f]));
  }
}

/** An in-process serial line to a StandardFirmata board, as firmata.js uses a serialport. */
export class FirmataWire extends EventEmitter {
  isOpen = false;
  /** Bytes the host wrote, in the order the board received them. */
  written = 0;
  private readonly held: { bytes: Buffer; done?: () => void }[] = [];
  private freeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly drains: (() => void)[] = [];
  private readonly firmware: StandardFirmata;

  /** Opens like a serial port: 'open', or 'error' when the board is not plugged in. */
  constructor(private readonly board: SimulatedBeehiveIO, plugged: () => boolean) {
    super();
    this.firmware = new StandardFirmata(board, (bytes) => { if (this.isOpen) this.emit('data', bytes); });
    setImmediate(() => {
      if (!plugged()) { this.emit('error', new Error('Error: No such file or directory, cannot open /dev/ttyACM0')); return; }
      this.isOpen = true;
      board.on('close', () => this.lost());
      this.firmware.start();
      this.emit('open');
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
    this.firmware.stop();
    clearTimeout(this.timer);
    this.board.close();
    setImmediate(() => { this.emit('close'); callback?.(); });
  }

  private flush(): void {
    if (this.timer) return;
    const wait = this.freeAt - performance.now();
    if (wait > 0) { this.timer = setTimeout(() => { this.timer = undefined; this.flush(); }, wait); return; }
    for (const { bytes, done } of this.held.splice(0)) {
      if (this.isOpen) { this.written += bytes.length; this.firmware.receive(bytes); }
      done?.();
    }
    for (const callback of this.drains.splice(0)) callback();
  }

  /** The cable was pulled: serialport reports the port closed (a DisconnectedError). */
  private lost(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.firmware.stop();
    this.emit('close', Object.assign(new Error('port disconnected'), { disconnected: true }));
  }
}
