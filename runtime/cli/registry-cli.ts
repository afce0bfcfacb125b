/**
 * The CLI's node commands as a view of the command registry: one sub-command
 * per registry command (`shared/set` is `apiary shared set`), its help the
 * registry's description, its `--flags` the properties of its argument schema,
 * checked with the registry's own zod schema before anything is sent. A
 * command an extension declares is in the CLI with no CLI code; a
 * presentation (node-command-views.ts) only changes how a command is typed
 * (positional arguments, a file read) or how its reply is printed.
 */
import { type Command, Option } from 'commander';
import { checkArgs, jsonSchemaOf, type CommandRegistry, type CommandSpec } from '../commands/command-registry.js';
import { ApiaryError, ErrorCodes, type ErrorCode } from '../errors.js';
import type { NodeReply } from './node-request.js';

/** An argument typed in place (`apiary shared set <map> <key> <value>`) instead of as a --flag. */
export interface PositionalArgument {
  /** The registry field it fills; none for one the formatter uses alone (`shared get [map]` picks from the reply). */
  field?: string;
  /** Its name in the usage line (default: the field's). */
  name?: string;
  optional?: boolean;
  /** Help text (default: the field's description). */
  description?: string;
  /** Turns the typed text into the value sent (a file into its JSON, a path made absolute); default: by the field's type. */
  read?: (text: string) => unknown;
}

/** What a formatter gets: the answering node, its result, and what was typed. */
export interface ReplyView {
  nodeId: string;
  result: unknown;
  /** The arguments sent. */
  args: Record<string, unknown>;
  /** The positionals that fill no field, by name. */
  view: Record<string, string | undefined>;
}

/** How one command is typed and printed, where the generic form does not fit. */
export interface Presentation {
  /** More spellings of the command, words separated by spaces (`audit` for decisions/audit). */
  also?: readonly string[];
  positional?: readonly PositionalArgument[];
  /** The reply as text; without one the result is printed as JSON. */
  format?(reply: ReplyView): string;
  /** Non-zero when the result means a failure (an audit that found a record that does not hold up). */
  exitCode?(result: unknown): number;
  /** The --timeout (ms) when none is given; default: the sender's own. */
  timeoutMs?: number;
}

/** Sends a validated command to a node; `options` are the parsed command-line options (--port, --node, --timeout...). */
export type SendCommand = (command: string, args: Record<string, unknown>, options: Record<string, unknown>) => Promise<NodeReply>;

export interface RegistryCliOptions {
  send: SendCommand;
  /** Adds the options every node command takes (--config, --data-dir, --port, --host, --node, --timeout). */
  nodeOptions(command: Command): Command;
  presentations?: Readonly<Record<string, Presentation>>;
  /** Help of the commands that group others (`sim`, `shared`); a group not named here gets a generic one. */
  groups?: Readonly<Record<string, string>>;
  /** Where replies go (default: stdout). */
  write?(text: string): void;
}

type Kind = 'string' | 'number' | 'boolean' | 'json';

interface FieldSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
}

/** The kind of value a JSON Schema property takes on the command line; a union, object, array or anything is JSON. */
function kindOf(schema: FieldSchema): Kind {
  if (schema.type === 'string') return 'string';
  if (schema.type === 'integer' || schema.type === 'number') return 'number';
  if (schema.type === 'boolean') return 'boolean';
  return 'json';
}

/**
 * Text to a value of the field's kind. What does not convert is passed on as
 * typed, so the registry's schema refuses it with its own field-and-fix message.
 */
export function parseAs(kind: Kind, text: string): unknown {
  switch (kind) {
    case 'string': return text;
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? n : text;
    }
    case 'boolean': return text === 'true' ? true : text === 'false' ? false : text;
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text; // a bare word is a string
      }
  }
}

const placeholder = (schema: FieldSchema, kind: Kind): string =>
  kind === 'boolean' ? '[true|false]' : `<${kind === 'number' && schema.type === 'integer' ? 'integer' : kind}>`;

function help(schema: FieldSchema, kind: Kind, required: boolean): string {
  const parts = [schema.description ?? ''];
  if (kind === 'json') parts.push('(JSON; a bare word is taken as a string)');
  if (schema.enum) parts.push(`(one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')})`);
  if (schema.default !== undefined) parts.push(`(default: ${JSON.stringify(schema.default)})`);
  if (required) parts.push('(required)');
  return parts.filter((p) => p !== '').join(' ');
}

/** `fromSeq` is `--from-seq`. */
const flagOf = (field: string): string => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The sub-command at `words` under `parent`, making the groups on the way. */
function place(parent: Command, words: readonly string[], groups: Readonly<Record<string, string>>): Command {
  let at = parent;
  for (const [i, word] of words.entries()) {
    const existing = at.commands.find((c) => c.name() === word);
    const last = i === words.length - 1;
    if (existing && last) throw new Error(`the CLI already has a command "${words.join(' ')}": rename the registry command or give it another spelling`);
    if (existing) { at = existing; continue; }
    const group = words.slice(0, i + 1).join(' ');
    at = at.command(word);
    if (!last) at.description(groups[group] ?? `node commands under ${words.slice(0, i + 1).join('/')}/ (see \`apiary commands\`)`);
  }
  return at;
}

/** Adds one sub-command per registry command (and per extra spelling) to `program`. */
export function addRegistryCommands(program: Command, registry: CommandRegistry, options: RegistryCliOptions): void {
  for (const spec of registry.list()) {
    const presentation = options.presentations?.[spec.name] ?? {};
    for (const spelling of [spec.name.split('/'), ...(presentation.also ?? []).map((s) => s.split(' '))]) {
      addOne(place(program, spelling, options.groups ?? {}), spec, presentation, options);
    }
  }
}

function addOne(command: Command, spec: CommandSpec, presentation: Presentation, options: RegistryCliOptions): void {
  const schema = jsonSchemaOf(spec) as { properties?: Record<string, FieldSchema>; required?: string[] };
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  options.nodeOptions(command.description(spec.description)).option('--json', 'print the raw JSON answer');
  // A write may need the owner's signature (a node with commands.writes: owner-signed refuses it unsigned).
  if (spec.write) command.option('--owner-key <file>', "sign this command with the owner key file (needed where the node sets commands.writes: owner-signed)");
  const positional = presentation.positional ?? [];
  for (const p of positional) {
    const field = p.field === undefined ? undefined : properties[p.field];
    if (p.field !== undefined && !field) throw new Error(`presentation of "${spec.name}": no argument "${p.field}" in the registry's schema`);
    const name = p.name ?? p.field ?? '';
    const description = p.description ?? (field ? help(field, kindOf(field), false) : '');
    command.argument(p.optional ? `[${name}]` : `<${name}>`, description);
  }
  // Each remaining property is a --flag, read back by its commander attribute name.
  const flags = new Map<string, string>();
  const typedInPlace = new Set(positional.map((p) => p.field));
  for (const [field, fieldSchema] of Object.entries(properties)) {
    if (typedInPlace.has(field)) continue;
    const kind = kindOf(fieldSchema);
    const option = new Option(`${flagOf(field)} ${placeholder(fieldSchema, kind)}`, help(fieldSchema, kind, required.has(field)))
      .argParser((text: string) => parseAs(kind, text));
    if (kind === 'boolean') option.preset('true');
    if (required.has(field)) option.makeOptionMandatory();
    const clash = command.options.find((o) => o.long === option.long || o.attributeName() === option.attributeName());
    if (clash) throw new Error(`command "${spec.name}": its argument "${field}" clashes with the CLI option ${clash.flags}; rename the argument`);
    command.addOption(option);
    flags.set(option.attributeName(), field);
  }
  command.action(async (...params: unknown[]) => {
    const self = params[params.length - 1] as Command;
    const opts = self.opts<Record<string, unknown>>();
    const args: Record<string, unknown> = {};
    const view: Record<string, string | undefined> = {};
    for (const [i, p] of positional.entries()) {
      const text = self.processedArgs[i] as string | undefined;
      if (p.field === undefined) { view[p.name ?? ''] = text; continue; }
      if (text === undefined) continue;
      const field = properties[p.field] ?? {};
      args[p.field] = p.read ? await p.read(text) : parseAs(kindOf(field), text);
    }
    for (const [attribute, field] of flags) if (opts[attribute] !== undefined) args[field] = opts[attribute];
    // The registry's own check: the message a node would answer, without a node.
    const checked = checkArgs(spec, args);
    if (!checked.ok) throw new ApiaryError(ErrorCodes.COMMAND_INVALID, checked.error);
    const timeout = opts.timeout ?? presentation.timeoutMs;
    const reply = await options.send(spec.name, args, { ...opts, ...(timeout !== undefined ? { timeout } : {}) });
    if (!reply.ok) throw new ApiaryError(knownCode(reply.code), reply.error ?? `node ${reply.nodeId} refused "${spec.name}"`);
    const text = opts.json || !presentation.format
      ? JSON.stringify(reply.result, null, 2) ?? 'null'
      : presentation.format({ nodeId: reply.nodeId, result: reply.result, args, view });
    (options.write ?? ((t: string) => process.stdout.write(t)))(`${text}\n`);
    const exitCode = presentation.exitCode?.(reply.result) ?? 0;
    if (exitCode !== 0) process.exitCode = exitCode;
  });
}

const CODES = new Set<string>(Object.values(ErrorCodes));
const knownCode = (code: string | undefined): ErrorCode => (code !== undefined && CODES.has(code) ? (code as ErrorCode) : ErrorCodes.COMMAND_INVALID);
