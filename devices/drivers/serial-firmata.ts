/**
 * A Firmata board on a serial port, opened with serialport 13 (prebuilt
 * binaries for linux-arm64 and x64 inside the package, nothing for node-gyp
 * to build on a board) and handed to firmata.js as its transport; the result
 * is the IO plugin johnny-five reads the board through. Left to itself,
 * johnny-five would open the port with its own serialport 8, whose native
 * binding compiles on install and is not in the .deb.
 *
 * serialport is imported when a board is opened, not at start-up (its native
 * binding loads with it). The path is the configured one or, when none is configured, the first port
 * that looks like a USB board (johnny-five's own rule); either way a lost
 * board is sought again on that same path.
 */
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { SerialPort } from 'serialport';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import { errorText, type FirmataIo, type IoPlugin } from './board-link.js';

/** StandardFirmata's baud rate. */
export const FIRMATA_BAUD_RATE = 57_600;
/** What a USB board's port is called (ttyACM*, ttyUSB*, cu.usbmodem*, COM*): johnny-five's auto-detection rule. */
const BOARD_PORT = /usb|acm|^com/i;
/** A board plugged in at boot can take a moment to enumerate: list this often before giving up. */
const DETECT_TRIES = 10;
const DETECT_WAIT_MS = 400;

/** How serialport 13 reaches the hardware: its own binding by default, @serialport/binding-mock in tests. */
export interface SerialBinding {
  list(): Promise<readonly { path: string }[]>;
  open(options: { path: string; baudRate: number }): Promise<unknown>;
}

export interface SerialFirmataOptions {
  /** The configured port; omitted = the first port that looks like a USB board. */
  path?: string;
  /** Replaces serialport's hardware binding (tests: @serialport/binding-mock). */
  binding?: SerialBinding;
  detectTries?: number;
  /** Where device nodes are, for when serialport cannot list the ports (tests: a temp dir). */
  devDir?: string;
}

export type FirmataPlugin = IoPlugin & FirmataIo & { readonly transport: SerialPort };

type FirmataClass = new (transport: SerialPort, options: Record<string, unknown>) => FirmataPlugin;

/** Makes one Firmata connection per call, on the same path every time once one was chosen. */
export function serialFirmata(options: SerialFirmataOptions = {}): () => Promise<FirmataPlugin> {
  let path = options.path;
  return async () => {
    const { SerialPort } = await import('serialport');
    path ??= await detectBoardPort(options, SerialPort);
    return firmataOn(SerialPort, path, options);
  };
}

/** The first port that looks like a USB board, waiting a little for one to appear. */
async function detectBoardPort(options: SerialFirmataOptions, serialPort: typeof SerialPort): Promise<string> {
  const binding = options.binding;
  const list = binding ? () => binding.list() : () => serialPort.list();
  const tries = options.detectTries ?? DETECT_TRIES;
  let seen: readonly { path: string }[] = [];
  let listFailure: string | undefined;
  for (let i = 0; i < tries; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, DETECT_WAIT_MS));
    // serialport lists through udevadm on Linux; without it (a minimal image), look for the device nodes.
    seen = await list().catch((err: unknown) => { listFailure = errorText(err); return usbTtys(options.devDir ?? '/dev'); });
    const found = seen.find((port) => BOARD_PORT.test(port.path));
    if (found) return found.path;
  }
  const why = listFailure === undefined ? '' : ` (serialport could not list the ports: ${listFailure}; no ttyACM* or ttyUSB* in ${options.devDir ?? '/dev'} either)`;
  throw new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `device.port is not set and no serial port looks like a Firmata board (ttyACM*, ttyUSB*)${why}${seen.length > 0 ? `; ports seen: ${seen.map((p) => p.path).join(', ')}` : '; no serial port at all'}`, {
    hint: 'plug the board in, or set device.port to its path (ls /dev/serial/by-id/ /dev/ttyACM* /dev/ttyUSB*)',
  });
}

/** USB serial device nodes (ttyACM*, ttyUSB*) in `dir`. */
async function usbTtys(dir: string): Promise<{ path: string }[]> {
  const names = await readdir(dir).catch(() => []);
  return names.filter((name) => /^tty(ACM|USB)\d+$/.test(name)).sort().map((name) => ({ path: `${dir}/${name}` }));
}

function firmataOn(serialPort: typeof SerialPort, path: string, options: SerialFirmataOptions): FirmataPlugin {
  const port = new serialPort({
    path, baudRate: FIRMATA_BAUD_RATE, autoOpen: false,
    // serialport 13 lets `binding` replace its own (SerialPort spreads the options over its default).
    ...(options.binding ? { binding: options.binding } : {}),
  });
  const { Firmata } = createRequire(import.meta.url)('firmata-io') as { Firmata: FirmataClass };
  const io = new Firmata(port, {});
  // What johnny-five adds to a Firmata it opened itself (board.js, Serial.connect).
  Object.assign(io, { name: 'Firmata', defaultLed: 13, port: path });
  let closing: Promise<void> | undefined;
  // Errors while opening reach firmata.js as the port's 'error', which it passes on: board-link listens.
  io.open = () => { if (!port.isOpen && !port.opening) port.open(); };
  io.close = () => closing ??= new Promise<void>((resolve) => {
    clearTimeout((io as unknown as { reportVersionTimeoutId?: NodeJS.Timeout }).reportVersionTimeoutId);
    const close = () => { if (port.isOpen) port.close(() => resolve()); else resolve(); };
    if (port.opening) {
      port.once('open', close);
      port.once('error', () => resolve());
    } else {
      close();
    }
  });
  return io;
}
