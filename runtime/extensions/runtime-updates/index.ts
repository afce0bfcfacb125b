/**
 * Runtime updates with rollback (issue 12): an owner-signed release is
 * installed into the slot that is not running, started on trial by the
 * launcher, and kept only if it is healthy within its window. See
 * release-slots.ts for the layout, launcher.ts for what runs, and
 * runtime-updates.ts for the health window.
 */
export { createRuntimeUpdates } from './runtime-updates.js';
