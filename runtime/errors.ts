/**
 * Errors with stable codes. Codes are part of the public interface: logs,
 * `apiary status` and tests match on them, so never rename one; add new ones.
 */
export const ErrorCodes = {
  CONFIG_NOT_FOUND: 'APIARY_CONFIG_NOT_FOUND',
  CONFIG_PARSE: 'APIARY_CONFIG_PARSE',
  CONFIG_INVALID: 'APIARY_CONFIG_INVALID',
  CONFIG_VERSION_UNSUPPORTED: 'APIARY_CONFIG_VERSION_UNSUPPORTED',
  IDENTITY_INVALID: 'APIARY_IDENTITY_INVALID',
  STORAGE_CORRUPT: 'APIARY_STORAGE_CORRUPT',
  STORAGE_IO: 'APIARY_STORAGE_IO',
  STORAGE_CLOSED: 'APIARY_STORAGE_CLOSED',
  DATA_DIR_INVALID: 'APIARY_DATA_DIR_INVALID',
  DATA_DIR_LOCKED: 'APIARY_DATA_DIR_LOCKED',
  START_ABORTED: 'APIARY_START_ABORTED',
  RECORD_TOO_LARGE: 'APIARY_RECORD_TOO_LARGE',
  MODEL_MANIFEST_INVALID: 'APIARY_MODEL_MANIFEST_INVALID',
  MODEL_HASH_MISMATCH: 'APIARY_MODEL_HASH_MISMATCH',
  MODEL_NOT_FOUND: 'APIARY_MODEL_NOT_FOUND',
  MODEL_LOAD_FAILED: 'APIARY_MODEL_LOAD_FAILED',
  MODEL_INPUT_INVALID: 'APIARY_MODEL_INPUT_INVALID',
  MODEL_OUTPUT_INVALID: 'APIARY_MODEL_OUTPUT_INVALID',
  MODEL_SIGNATURE_MISSING: 'APIARY_MODEL_SIGNATURE_MISSING',
  MODEL_SIGNATURE_INVALID: 'APIARY_MODEL_SIGNATURE_INVALID',
  MODEL_SIGNER_UNTRUSTED: 'APIARY_MODEL_SIGNER_UNTRUSTED',
  MODEL_UPDATE_INVALID: 'APIARY_MODEL_UPDATE_INVALID',
  DEVICE_OPEN_FAILED: 'APIARY_DEVICE_OPEN_FAILED',
  DEVICE_DATA_INVALID: 'APIARY_DEVICE_DATA_INVALID',
  /** The device's board stopped answering (its port closed, its reports stopped); it is being reopened. */
  DEVICE_DISCONNECTED: 'APIARY_DEVICE_DISCONNECTED',
  BROKER_LISTEN_FAILED: 'APIARY_BROKER_LISTEN_FAILED',
  BUS_CONNECT_FAILED: 'APIARY_BUS_CONNECT_FAILED',
  COMMAND_INVALID: 'APIARY_COMMAND_INVALID',
  COMMAND_DUPLICATE: 'APIARY_COMMAND_DUPLICATE',
  NODE_NOT_RUNNING: 'APIARY_NODE_NOT_RUNNING',
  /** Several nodes run on this machine and the command did not say which to ask. */
  NODE_AMBIGUOUS: 'APIARY_NODE_AMBIGUOUS',
  FEED_ENTRY_INVALID: 'APIARY_FEED_ENTRY_INVALID',
  FEED_SIGNATURE_INVALID: 'APIARY_FEED_SIGNATURE_INVALID',
  CERTIFICATE_INVALID: 'APIARY_CERTIFICATE_INVALID',
  PEER_UNTRUSTED: 'APIARY_PEER_UNTRUSTED',
  MESH_MESSAGE_INVALID: 'APIARY_MESH_MESSAGE_INVALID',
  PRIVATE_BOX_INVALID: 'APIARY_PRIVATE_BOX_INVALID',
  SHARED_STATE_INVALID: 'APIARY_SHARED_STATE_INVALID',
  SHARED_STATE_FORBIDDEN: 'APIARY_SHARED_STATE_FORBIDDEN',
  OWNER_KEY_MISSING: 'APIARY_OWNER_KEY_MISSING',
  USAGE_INVALID: 'APIARY_USAGE_INVALID',
  TRAINING_DATA_INVALID: 'APIARY_TRAINING_DATA_INVALID',
  EXTENSION_ORDER: 'APIARY_EXTENSION_ORDER',
  EXTENSION_FAILED: 'APIARY_EXTENSION_FAILED',
  APP_UNKNOWN: 'APIARY_APP_UNKNOWN',
  /** One sensor of a device does not answer (unplugged, its driver not loaded); the others go on, and it is read again. */
  DEVICE_SENSOR_MISSING: 'APIARY_DEVICE_SENSOR_MISSING',
  /** A runtime release file is damaged, not a release, or does not match what announced it. */
  RELEASE_INVALID: 'APIARY_RELEASE_INVALID',
  /** A runtime release is unsigned, its signature does not verify, or its signer is not trusted for runtime releases. */
  RELEASE_UNTRUSTED: 'APIARY_RELEASE_UNTRUSTED',
  /** A runtime release cannot run here: another architecture, a Node.js it does not support, or a config format it cannot read. */
  RELEASE_INCOMPATIBLE: 'APIARY_RELEASE_INCOMPATIBLE',
  /** A runtime release is not newer than the one running (refused unless forced). */
  RELEASE_DOWNGRADE: 'APIARY_RELEASE_DOWNGRADE',
  /** Another update is being installed, or one is still in its health window. */
  UPDATE_BUSY: 'APIARY_UPDATE_BUSY',
  /** A blob descriptor (sha256, size, chunk size, chunk hashes) that is malformed or does not add up. */
  BLOB_DESCRIPTOR_INVALID: 'APIARY_BLOB_DESCRIPTOR_INVALID',
  /** A file does not match its blob descriptor (served, or fetched in full). */
  BLOB_INVALID: 'APIARY_BLOB_INVALID',
  /** A blob fetch was aborted (its signal, or the mesh stopped); its .part file is kept for a later fetch. */
  BLOB_FETCH_ABORTED: 'APIARY_BLOB_FETCH_ABORTED',
  /** Too many blob fetches at once, or that blob is being fetched already. */
  BLOB_BUSY: 'APIARY_BLOB_BUSY',
  /** Node-RED cannot run as configured: not installed, no password for an editor off loopback, an unreadable admin file. */
  FLOWS_UNAVAILABLE: 'APIARY_FLOWS_UNAVAILABLE',
  /** Audio that cannot be used: a WAV file that is malformed or not 16-bit PCM, a buffer of odd length, a rate out of range. */
  AUDIO_INVALID: 'APIARY_AUDIO_INVALID',
  /** The voice path cannot run: a program (pocketsphinx, espeak-ng, arecord, aplay, sox) or the speech model is missing; the hint has the `apt install` line. */
  VOICE_UNAVAILABLE: 'APIARY_VOICE_UNAVAILABLE',
  /** A speech program failed, timed out, wrote too much or wrote something unreadable. */
  VOICE_FAILED: 'APIARY_VOICE_FAILED',
  /** The node is already listening for a question (one microphone): wait for its answer. */
  VOICE_BUSY: 'APIARY_VOICE_BUSY',
  /** A payment this node will not sign: an unknown payee, a unit it does not use, more than is owed, or its own feed is behind a peer's copy (restored from a backup). */
  PAYMENT_REFUSED: 'APIARY_PAYMENT_REFUSED',
  /** A write asked to be judged as the owner's (an `apiary mcp` write) but carries no owner signature: start `apiary mcp --owner-key <owner.json>`. */
  COMMAND_UNSIGNED: 'APIARY_COMMAND_UNSIGNED',
  /** A command's owner signature envelope is malformed, or its signature does not verify. */
  COMMAND_SIGNATURE_INVALID: 'APIARY_COMMAND_SIGNATURE_INVALID',
  /** A command is signed by a key that is not this node's owner key (or the node has no owner key yet). */
  COMMAND_NOT_OWNER: 'APIARY_COMMAND_NOT_OWNER',
  /** A signed command was seen before (its nonce), or its time is outside the allowed clock skew. */
  COMMAND_REPLAYED: 'APIARY_COMMAND_REPLAYED',
  /** A request to the MCP endpoint (mcp.http.auth: owner-token) has no token, or one that is malformed, not the owner's, for another node, expired or revoked: HTTP 401. */
  MCP_TOKEN_INVALID: 'APIARY_MCP_TOKEN_INVALID',
  /** A write tool was called with a read-scope MCP token: make a write one (`apiary owner mcp-token --scope write`). */
  MCP_TOKEN_SCOPE: 'APIARY_MCP_TOKEN_SCOPE',
  /** A command asked over MQTT while the node is still starting, before the extension that defines it has started: ask again in a moment. */
  NODE_STARTING: 'APIARY_NODE_STARTING',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class ApiaryError extends Error {
  readonly code: ErrorCode;
  /** A sentence telling the user what to do about it, when there is one. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiaryError';
    this.code = code;
    this.hint = options.hint;
  }
}

export function isApiaryError(err: unknown, code?: ErrorCode): err is ApiaryError {
  return err instanceof ApiaryError && (code === undefined || err.code === code);
}

/** Message plus hint, for a terminal. */
export function describeError(err: unknown): string {
  if (err instanceof ApiaryError) {
    return `${err.code}: ${err.message}${err.hint ? `\n  fix: ${err.hint}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}
