/**
 * What an answer may read: the replies of the node's own registry commands,
 * and nothing else. Each value an answer uses is recorded as a source (the
 * command, the path in its reply, the value), so a reply shows where every
 * number came from, and a test can hold it against `apiary status`.
 */
import { ApiaryError, ErrorCodes, type ErrorCode } from '../../errors.js';
import type { CommandOutcome } from '../../commands/command-registry.js';

export type RunCommand = (name: string, args: Record<string, unknown>) => Promise<CommandOutcome>;

export interface Source {
  readonly command: string;
  readonly args?: Readonly<Record<string, unknown>>;
  /** Where in the command's result (`latest.readings.weight.value`); empty for the whole result. */
  readonly path: string;
  readonly value: unknown;
}

export interface ReadingView { readonly value: number; readonly unit: string; readonly t: number }
export interface ModelView { readonly model: string; readonly label: string; readonly probabilities: Readonly<Record<string, number>>; readonly t: number }
export interface DecisionView {
  readonly rule: string; readonly state: string; readonly active: boolean; readonly severity: string; readonly message: string;
  readonly reason: string; readonly input: string; readonly value: number; readonly threshold: number; readonly clearAt: number; readonly since: number; readonly t: number;
}
export interface PeerView { readonly nodeId: string; readonly name?: string | undefined; readonly link: string }
/** One neighbour's latest decision of one rule (`mesh/decisions`). */
export interface NeighbourDecision { readonly origin: string; readonly name?: string | undefined; readonly rule: string; readonly active: boolean; readonly severity: string; readonly message: string; readonly reason: string; readonly t: number }
export interface RecentReadings { readonly channel: string; readonly unit: string; readonly readings: readonly { readonly value: number; readonly t: number }[] }

/** The parts of `status` answers read; its other keys are left alone. */
export interface StatusView {
  readonly name: string;
  readonly nodeTime: number;
  readonly latest: {
    readonly readings: Readonly<Record<string, ReadingView>>;
    readonly models: Readonly<Record<string, ModelView>>;
    readonly decisions: Readonly<Record<string, DecisionView>>;
  };
  readonly mesh?: { readonly nodeId: string; readonly peers: readonly PeerView[] } | undefined;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

export class Evidence {
  readonly sources: Source[] = [];
  private status: Promise<StatusView> | undefined;

  constructor(private readonly run: RunCommand) {}

  /** A command's result; a refusal is an error an answer reports ("the mesh is off"), not a number. */
  async result(command: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const outcome = await this.run(command, args);
    if (!outcome.ok) throw new ApiaryError(KNOWN_CODES.has(outcome.code) ? (outcome.code as ErrorCode) : ErrorCodes.COMMAND_INVALID, `${command}: ${outcome.error}`);
    return outcome.result;
  }

  /** `status`, once per question: every part of one answer reads the same moment. */
  snapshot(): Promise<StatusView> {
    this.status ??= this.result('status').then((r) => r as StatusView);
    return this.status;
  }

  /** Records that the answer used `value`, found at `path` of `command`'s result, and returns it. */
  use<T>(command: string, path: string, value: T, args?: Record<string, unknown>): T {
    this.sources.push({ command, path, value, ...(args ? { args } : {}) });
    return value;
  }

  async recentReadings(channel: string, limit: number): Promise<RecentReadings> {
    const args = { channel, limit };
    return (await this.result('readings/recent', args)) as RecentReadings;
  }

  async neighbourDecisions(): Promise<readonly NeighbourDecision[]> {
    return (await this.result('mesh/decisions')) as NeighbourDecision[];
  }
}
