/**
 * Rolling operations coordinated at run time. Start steps of a live cluster's members run in parallel in the
 * resource graph; each member that must restart, join or leave takes its turn through an etcd lock instead
 * (`sh/rolling.sh`: a lease-bound lock, every other member healthy first, the leader last and handing over
 * before it goes, caught up before the turn ends). This module renders the shell that uses those helpers;
 * the helpers themselves live in the `.sh` file (linted by shellcheck), read once.
 */
import * as fs from "fs";
import * as path from "path";
import { sq } from "./shell";

/** The helpers file, beside this module (the build copies `sh/` next to the compiled JavaScript). */
export const ROLLING_SH = path.join(__dirname, "sh", "rolling.sh");

let rollingText: string | undefined;
/** The rolling-operation helpers (functions only; nothing runs when they are sourced). */
export function rollingHelpers(): string {
    if (rollingText === undefined) {
        if (!fs.existsSync(ROLLING_SH)) throw new Error(`etcd-ha: ${ROLLING_SH} is missing: the package build copies components/etcd/sh next to the compiled modules (npm run build)`);
        rollingText = fs.readFileSync(ROLLING_SH, "utf8");
    }
    return rollingText;
}

/** The etcd key prefix under which a cluster's members coordinate (`<prefix>/rolling` lock, `<prefix>/pending/<member>`). */
export function coordinationPrefix(clusterName: string): string {
    return `/etcd-ha/${clusterName}`;
}

/** How long a member waits for its turn and may hold it. */
export interface TurnBounds {
    /** The longest wait for the turn (other members go first), seconds. */
    waitSeconds: number;
    /** The longest a turn is held (the lock and the pending marker end by themselves after it), seconds. */
    holdSeconds: number;
}

/** Default bounds for a cluster of `members`: every other member's turn may come first. */
export function turnBounds(members: number): TurnBounds {
    return { waitSeconds: 300 + 120 * members, holdSeconds: 900 };
}

/**
 * Shell defining `take_turn` (waits for this member's turn; see etcd_ha_turn_begin) for a member script that
 * has defined `etcd_ha_ctl`, `name`, `client_url` and `others` (the other members' client URLs, comma-separated).
 */
export function turnShell(o: { clusterName: string; bounds: TurnBounds }): string {
    return `${rollingHelpers().trimEnd()}
coordination=${sq(coordinationPrefix(o.clusterName))}
take_turn() {
  etcd_ha_turn_begin "$coordination" "$name" "$client_url" "\${others:-$client_url}" ${o.bounds.waitSeconds} ${o.bounds.holdSeconds}
}`;
}
