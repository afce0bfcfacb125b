/**
 * Human-friendly durations ("30s", "15m", "24h") and sizes ("1MiB") for the
 * config file. Plain numbers are milliseconds and bytes.
 */
import { z } from 'zod';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3 };

export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? NaN));
}

export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)\s*$/.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (SIZE_UNITS[match[2] ?? ''] ?? NaN));
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** A duration in ms, at least `minMs`: accepts "30s", "15m", "24h" or a number of ms. */
export function duration(minMs: number, maxMs = 366 * 86_400_000) {
  const expected = `a duration between ${formatDuration(minMs)} and ${formatDuration(maxMs)}, like "30s", "15m" or "24h"`;
  return z
    .union([z.number(), z.string()], { error: `expected ${expected}` })
    .transform((value, ctx) => {
      const ms = typeof value === 'number' ? value : parseDuration(value);
      if (ms === undefined || !Number.isFinite(ms) || ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
        return z.NEVER;
      }
      return ms;
    });
}

/** A size in bytes between the bounds: accepts "64KiB", "16MiB" or a number of bytes. */
export function size(minBytes: number, maxBytes: number) {
  const expected = `a size between ${formatBytes(minBytes)} and ${formatBytes(maxBytes)}, like "1MiB" or "64KiB"`;
  return z
    .union([z.number(), z.string()], { error: `expected ${expected}` })
    .transform((value, ctx) => {
      const bytes = typeof value === 'number' ? value : parseSize(value);
      if (bytes === undefined || !Number.isInteger(bytes) || bytes < minBytes || bytes > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
        return z.NEVER;
      }
      return bytes;
    });
}
