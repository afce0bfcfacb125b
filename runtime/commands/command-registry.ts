/**
 * One registry of the commands a node offers. Each command is declared once
 * (name, description, zod arguments, handler); the MQTT command topics, the
 * CLI (`apiary commands`) and later MCP tools, voice intents and Node-RED
 * nodes are views of it. `run()` validates the arguments and answers with the
 * reply shape the MQTT topics have always used: `{ok, result}` or
 * `{ok: false, code, error}`.
 */
import { z } from 'zod';
import { ApiaryError, ErrorCodes, isApiaryError, type ErrorCode } from '../errors.js';
import { valueAt } from '../value-at.js';

/** A command's arguments: always an object schema, so each argument is a named field. */
export type CommandArgs = z.ZodObject;

export interface CommandSpec<A extends CommandArgs = CommandArgs> {
  /** `shared/set`: the MQTT `cmd/` suffix, the MCP tool name, the voice intent target. */
  readonly name: string;
  /** One sentence: CLI help, MCP tool description. */
  readonly description: string;
  readonly args: A;
  /** True for commands that change the node or the mesh (an MCP client may ask before calling them). */
  readonly write: boolean;
  /** Why the command cannot run on this node (mesh off, no simulated device), or undefined when it can. */
  unavailable?(): string | undefined;
  /** May return a promise. Throws an ApiaryError for a refusal the caller should see (its code and message go into the reply). */
  handler(args: z.output<A>): unknown;
}

export type CommandOutcome = { ok: true; result: unknown } | { ok: false; code: string; error: string };

export interface CommandDefinition<A extends CommandArgs> {
  description: string;
  args: A;
  write?: boolean;
  unavailable?: () => string | undefined;
  /** May return a promise. */
  handler: (args: z.output<A>) => unknown;
}

const NAME = /^[a-z][a-z0-9-]*(\/[a-z][a-z0-9-]*)*$/;

export class CommandRegistry {
  private readonly commands = new Map<string, CommandSpec>();
  /** Command name -> the extension that defined it (through `forOwner`). */
  private readonly owners = new Map<string, string>();
  /** Set on a view made by `forOwner`. */
  private readonly definingOwner: string | undefined;

  /**
   * The same registry, as seen by one extension: what it defines is recorded
   * as its own, so `removeOwner` can take it back if the extension fails.
   */
  forOwner(owner: string): CommandRegistry {
    return Object.create(this, { definingOwner: { value: owner } }) as CommandRegistry;
  }

  /** Removes every command `owner` defined (an extension that failed to start); returns their names. */
  removeOwner(owner: string): string[] {
    const names = [...this.owners].filter(([, o]) => o === owner).map(([name]) => name);
    for (const name of names) {
      this.commands.delete(name);
      this.owners.delete(name);
    }
    return names;
  }

  /** Declares a command; a second command of the same name is a programming error (COMMAND_DUPLICATE). */
  define<A extends CommandArgs>(name: string, definition: CommandDefinition<A>): this {
    if (!NAME.test(name)) throw new ApiaryError(ErrorCodes.COMMAND_INVALID, `command name "${name}" is not lower-case words separated by "/"`);
    if (this.commands.has(name)) throw new ApiaryError(ErrorCodes.COMMAND_DUPLICATE, `command "${name}" is already defined`, { hint: 'give the new command another name, or extend the existing one' });
    const { description, args, write = false, unavailable, handler } = definition;
    const spec: CommandSpec<A> = { name, description, args, write, handler, ...(unavailable ? { unavailable } : {}) };
    this.commands.set(name, spec);
    if (this.definingOwner !== undefined) this.owners.set(name, this.definingOwner);
    return this;
  }

  /** Every command, in the order they were defined. */
  list(): CommandSpec[] {
    return [...this.commands.values()];
  }

  get(name: string): CommandSpec | undefined {
    return this.commands.get(name);
  }

  /**
   * Runs a command with raw (unvalidated) arguments. Refusals (unknown
   * command, unavailable here, bad arguments, an ApiaryError from the handler)
   * are answered; any other error is thrown, for the caller to count.
   */
  async run(name: string, rawArgs: unknown): Promise<CommandOutcome> {
    const spec = this.commands.get(name);
    if (!spec) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: this.unknownMessage(name) };
    const why = spec.unavailable?.();
    if (why !== undefined) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: why };
    const checked = checkArgs(spec, rawArgs);
    if (!checked.ok) return { ok: false, code: ErrorCodes.COMMAND_INVALID, error: checked.error };
    try {
      return { ok: true, result: await spec.handler(checked.args) };
    } catch (err) {
      if (!isApiaryError(err)) throw err;
      return { ok: false, code: err.code, error: err.hint ? `${err.message} (${err.hint})` : err.message };
    }
  }

  private unknownMessage(name: string): string {
    const names = this.list().map((c) => c.name);
    const known = names.length <= 1 ? (names[0] ?? 'none') : `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}`;
    return `unknown command "${name}": known commands are ${known}`;
  }
}

/**
 * Validates raw arguments as run() does: the parsed arguments, or the message
 * the reply carries (each field, the value it got, the fix). The CLI checks
 * with it before sending, so a bad value needs no node to be refused.
 */
export function checkArgs<A extends CommandArgs>(command: CommandSpec<A>, rawArgs: unknown): { ok: true; args: z.output<A> } | { ok: false; error: string } {
  const raw = rawArgs ?? {};
  const parsed = command.args.safeParse(raw);
  return parsed.success ? { ok: true, args: parsed.data } : { ok: false, error: describeArgIssues(command, parsed.error.issues, raw) };
}

/** The JSON Schema of a command's arguments (an MCP tool's inputSchema). */
export function jsonSchemaOf(command: CommandSpec): Record<string, unknown> {
  return z.toJSONSchema(command.args, { io: 'input', unrepresentable: 'any' });
}

/** `map (string), key (string), value, [limit (integer)]`: the arguments a command takes, for messages and help. */
export function describeArgs(command: CommandSpec): string {
  const schema = jsonSchemaOf(command) as { properties?: Record<string, { type?: string }>; required?: string[] };
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([field, s]) => {
    const text = s.type ? `${field} (${s.type})` : field;
    return required.has(field) ? text : `[${text}]`;
  });
  return fields.length > 0 ? fields.join(', ') : 'none';
}

/** The same style as config errors: the field, the value it got, what is wrong, and a fix. */
function describeArgIssues(command: CommandSpec, issues: readonly z.core.$ZodIssue[], raw: unknown): string {
  const problems = issues.map((issue) => {
    const fieldPath = issue.path.map(String);
    const field = fieldPath.length > 0 ? fieldPath.join('.') : 'args';
    if (issue.code === 'unrecognized_keys') {
      return `unknown argument${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}${fieldPath.length > 0 ? ` in "${field}"` : ''}`;
    }
    const value = valueAt(raw, issue.path);
    const got = value === undefined ? 'nothing (the argument is missing)' : JSON.stringify(value);
    return `field "${field}": got ${got}; ${issue.message}`;
  });
  return `bad arguments for "${command.name}": ${problems.join('; ')} (fix: ${command.name} takes ${describeArgs(command)}; see \`apiary commands\`)`;
}

/** A refusal for a handler to throw: its code and message go into the reply. */
export function commandRefused(message: string, code: ErrorCode = ErrorCodes.COMMAND_INVALID): ApiaryError {
  return new ApiaryError(code, message);
}
