/**
 * Shell quoting shared by every script renderer (scripts.ts, upgrade.ts, restore.ts, maintenance.ts). A
 * module of its own so that renderers scripts.ts imports can use it without an import cycle.
 */

/** Single-quotes a value for the shell. */
export function sq(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}
