/**
 * A Firmata board behind serialport 13's mock binding (@serialport/binding-mock):
 * the production path (serialport 13's SerialPort, firmata.js, johnny-five)
 * opens a port that exists only here, and StandardFirmata (firmata-wire.ts)
 * answers for a simulated board at the far end. The cable can be pulled:
 * the port's pending read fails as the kernel's does when a USB device goes
 * (serialport turns that into a DisconnectedError and closes), and the path
 * vanishes from the port list until the cable is back.
 */
import { SerialPortMock } from 'serialport';
import type { SerialBinding } from '../../devices/drivers/serial-firmata.js';
import type { SimulatedBeehiveIO } from '../../devices/io/simulated-beehive-io.js';
import { StandardFirmata } from './firmata-wire.js';

// serialport 13's own @serialport/binding-mock (its ES module build has no types of its own to import).
const MockBinding = SerialPortMock.binding;
type MockPortBinding = Awaited<ReturnType<typeof MockBinding.open>>;

export class FirmataSerialMock {
  /** Every open the binding saw, with its options. */
  readonly opens: { path: string; baudRate: number }[] = [];
  /** Bytes the host wrote to the board. */
  written = 0;
  readonly binding: SerialBinding;
  private readonly pulls = new Set<() => void>();

  /** `others`: more ports in the list that are not the board (a built-in UART). */
  constructor(readonly path: string, private readonly makeBoard: () => SimulatedBeehiveIO, private readonly others: readonly string[] = []) {
    MockBinding.reset();
    for (const other of others) MockBinding.createPort(other);
    MockBinding.createPort(path);
    this.binding = {
      list: () => MockBinding.list(),
      open: async (options) => {
        this.opens.push({ path: options.path, baudRate: options.baudRate });
        const port = await MockBinding.open(options);
        if (options.path === path) this.attach(port);
        return port;
      },
    };
  }

  /** The USB cable is pulled: the open port is disconnected, and the path is gone until `plug()`. */
  unplug(): void {
    MockBinding.reset();
    for (const other of this.others) MockBinding.createPort(other);
    for (const pull of this.pulls) pull();
    this.pulls.clear();
  }

  plug(): void {
    MockBinding.createPort(this.path);
  }

  /** Wires one open port to a fresh board running StandardFirmata. */
  private attach(port: MockPortBinding): void {
    const board = this.makeBoard();
    const firmware = new StandardFirmata(board, (bytes) => { if (port.isOpen) port.emitData(bytes); });
    const { read, write, close } = { read: port.read.bind(port), write: port.write.bind(port), close: port.close.bind(port) };
    let disconnect: (err: Error) => void = () => undefined;
    const gone = new Promise<never>((_resolve, reject) => { disconnect = reject; });
    gone.catch(() => undefined);
    port.read = (buffer, offset, length) => Promise.race([read(buffer, offset, length), gone]);
    port.write = async (buffer) => {
      await write(buffer);
      this.written += buffer.length;
      firmware.receive(buffer);
    };
    port.close = async () => {
      this.pulls.delete(pull);
      firmware.stop();
      board.close();
      await close();
    };
    const pull = () => {
      firmware.stop();
      board.lose(false);
      // What bindings-cpp's poller reports when the device node goes: serialport closes the port with a DisconnectedError.
      disconnect(Object.assign(new Error('Input/output error, the device was unplugged'), { disconnected: true }));
    };
    this.pulls.add(pull);
    firmware.start();
  }
}
