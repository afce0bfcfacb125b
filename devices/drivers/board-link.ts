/**
 * One connection to a Firmata board through johnny-five: opened when the
 * board says it is ready, closed so that the same serial path can be opened
 * again (a lost board comes back on its path; see beehive-board.ts). The
 * board is always an IO plugin made for the connection: firmata.js on a
 * serialport 13 port (serial-firmata.ts) or the simulated board; johnny-five
 * never opens a serial port itself.
 */
import type { EventEmitter } from 'node:events';
import type { Board } from 'johnny-five';
import { ApiaryError, ErrorCodes } from '../../runtime/errors.js';
import type { I2cIo } from './sht31.js';

/**
 * What we use of johnny-five: its Board class alone (loadFive). The package's index
 * loads some 40 component modules (LCD, servo, REPL...) that the beehive never uses.
 */
export interface Five { readonly Board: typeof Board }

/** johnny-five's Board, without the rest of the package: less to load at start-up and to hold in RAM. */
export async function loadFive(): Promise<Five> {
  return { Board: (await import('johnny-five/lib/board.js')).default };
}

/** A johnny-five IO plugin made for one connection: opened by board-link, closed (and awaited) when the link ends. */
export type IoPlugin = EventEmitter & { open?: () => void; close?: () => void | Promise<void>; isReady?: boolean };

/** What the beehive board uses of firmata.js (and of the simulated board, which mirrors it). */
export interface FirmataIo extends I2cIo {
  readonly MODES: { readonly ANALOG: number };
  pinMode(pin: number, mode: number): unknown;
  analogRead(pin: number, callback: (value: number) => void): unknown;
  setSamplingInterval?(ms: number): unknown;
  /** firmata.js: writes not yet handed to the serial port. */
  readonly pending?: number;
  /** The serial path of a Firmata board (serial-firmata.ts sets it). */
  readonly port?: string;
  /** firmata.js: the port it writes to; drained before an I2C read is timed. */
  readonly transport?: { drain?(callback: (err?: unknown) => void): void } | null;
}

export interface BoardLink {
  readonly board: Board;
  readonly io: FirmataIo;
  readonly plugin: IoPlugin;
  /** Called once if the connection is lost after it was ready: the port closed or failed. */
  onLost?: (reason: string) => void;
}

export interface OpenBoardOptions {
  five: Five;
  kind: string;
  plugin: IoPlugin;
  readyTimeoutMs: number;
  /** Gives up waiting for the board (the device is closing). */
  signal?: AbortSignal;
}

const CLOSE_TIMEOUT_MS = 2_000;
/** How long to wait for written commands to leave before reading anyway. */
const SENT_TIMEOUT_MS = 500;

/** Opens a board and waits until it is ready; a failure closes what was opened. */
export async function openBoard(o: OpenBoardOptions): Promise<BoardLink> {
  const board = new o.five.Board({
    io: o.plugin,
    repl: false,
    debug: false,
    sigint: false,
    timeout: o.readyTimeoutMs,
  } as ConstructorParameters<Five['Board']>[0]);
  const events = board as unknown as EventEmitter;
  const opened: { link?: BoardLink } = {};
  let fail: ((err: unknown) => void) | undefined;
  // johnny-five relays the port's close, disconnect and error once ready; before that, the
  // plugin's own error says it could not open. A listener stays on both for good: an
  // EventEmitter without one throws, even on a board given up on long ago.
  const onError = (err: unknown) => { if (fail) fail(err); else opened.link?.onLost?.(errorText(err)); };
  events.on('error', onError);
  o.plugin.on('error', onError);
  for (const event of ['close', 'disconnect']) events.on(event, () => opened.link?.onLost?.(`the board's port reported "${event}"`));
  const onAbort = () => fail?.(new Error('the device was closed meanwhile'));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `the ${o.kind} board did not become ready within ${o.readyTimeoutMs / 1000} s`, {
        hint: 'check the cable and that the board runs StandardFirmata (or set device.kind: simulated-beehive)',
      })), o.readyTimeoutMs);
      fail = (err) => {
        clearTimeout(timer);
        const port = (o.plugin as Partial<FirmataIo>).port;
        reject(new ApiaryError(ErrorCodes.DEVICE_OPEN_FAILED, `cannot open the ${o.kind} board${port ? ` on ${port}` : ''}: ${errorText(err)}`, {
          hint: 'check device.port (ls /dev/ttyACM* /dev/ttyUSB*), that you may use it (the dialout group), and that the board runs StandardFirmata',
          cause: err,
        }));
      };
      events.once('ready', () => { clearTimeout(timer); resolve(); });
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.signal?.aborted) onAbort();
      o.plugin.open?.();
    });
  } catch (err) {
    fail = undefined;
    o.signal?.removeEventListener('abort', onAbort);
    await closeBoard(o.five, { board, io: board.io as FirmataIo, plugin: o.plugin });
    throw err;
  }
  fail = undefined;
  o.signal?.removeEventListener('abort', onAbort);
  opened.link = { board, io: board.io as FirmataIo, plugin: o.plugin };
  return opened.link;
}

/** Closes the connection: its port is free to open again (bounded wait), and johnny-five forgets the board. */
export async function closeBoard(five: Five, link: BoardLink): Promise<void> {
  link.onLost = undefined;
  const cache = (five.Board as unknown as { cache?: unknown[] }).cache;
  const at = cache?.indexOf(link.board) ?? -1;
  if (at >= 0) cache?.splice(at, 1);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.resolve(link.plugin.close?.()).catch(() => undefined),
    new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_TIMEOUT_MS); }),
  ]);
  clearTimeout(timer);
}

/**
 * Resolves once every command written so far has left the host: firmata.js has handed its
 * writes to the port (`pending`), and the port has drained them (tcdrain). Bounded: a port that
 * never drains is found out by the read that follows.
 */
export async function whenSent(io: FirmataIo): Promise<void> {
  const deadline = Date.now() + SENT_TIMEOUT_MS;
  while ((io.pending ?? 0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  const transport = io.transport;
  if (!transport?.drain) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    transport.drain?.(() => { clearTimeout(timer); resolve(); });
  });
}

/** johnny-five reports some errors as plain objects ({ message, class }), not Errors. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err !== null && typeof err === 'object' && 'message' in err && typeof err.message === 'string') return err.message;
  return String(err);
}
