/**
 * The shell files the member steps run (`sh/*.sh`, linted by shellcheck) and the bounds of the turns members
 * take to change a live cluster. Start steps of a live cluster's members run in parallel in the resource
 * graph; each member that must restart, join or leave takes its turn through an etcd lock instead
 * (`sh/rolling.sh`: a lease-bound lock, every other member healthy first, the leader last and handing over
 * before it goes, caught up before the turn ends). TypeScript supplies only the files' parameters.
 */
import * as fs from "fs";
import * as path from "path";
import { sq } from "./shell";

/** The directory of the shell files, beside this module (the build copies `sh/` next to the compiled JavaScript). */
export const SH_DIR = path.join(__dirname, "sh");
/** The rolling-operation helpers. */
export const ROLLING_SH = path.join(SH_DIR, "rolling.sh");
/** The start and leave steps. */
export const MEMBER_SH = path.join(SH_DIR, "member.sh");
/** The binaries step. */
export const BINARIES_SH = path.join(SH_DIR, "binaries.sh");
/** The cluster health gate. */
export const GATE_SH = path.join(SH_DIR, "gate.sh");
/** The cluster's teardown step (the destroy marker). */
export const TEARDOWN_SH = path.join(SH_DIR, "teardown.sh");
/** The deletes of the install steps (certs, config, binaries, prepare). */
export const UNINSTALL_SH = path.join(SH_DIR, "uninstall.sh");
/** The members' S3 client (the snapshot script's off-host copies). */
export const S3_SH = path.join(SH_DIR, "s3.sh");

const loaded = new Map<string, string>();
/** A shell file's text (functions only: nothing runs when it is sourced), read once. */
export function shellFile(file: string): string {
    let text = loaded.get(file);
    if (text === undefined) {
        if (!fs.existsSync(file)) throw new Error(`etcd-ha: ${file} is missing: the package build copies components/etcd/sh next to the compiled modules (npm run build)`);
        text = fs.readFileSync(file, "utf8");
        loaded.set(file, text);
    }
    return text;
}

/** The rolling-operation helpers (functions only). */
export function rollingHelpers(): string {
    return shellFile(ROLLING_SH);
}

/**
 * A parameter block for a shell file: one `name='value'` line each, in the given order. Names must be shell
 * identifiers; values are single-quoted (never expanded).
 */
export function shellParams(params: Readonly<Record<string, string | number | boolean>>): string {
    return Object.entries(params)
        .map(([k, v]) => {
            if (!/^[a-z_][a-z0-9_]*$/.test(k)) throw new Error(`bad shell parameter name ${k}`);
            const text = typeof v === "boolean" ? (v ? "yes" : "") : String(v);
            if (text.includes("\n")) throw new Error(`shell parameter ${k} must be one line`);
            return `${k}=${sq(text)}`;
        })
        .join("\n");
}

/**
 * The etcd key prefix under which a cluster's members coordinate (`<prefix>/rolling` lock,
 * `<prefix>/pending/<member>`, `<prefix>/teardown`).
 */
export function coordinationPrefix(clusterName: string): string {
    return `/etcd-ha/${clusterName}`;
}

/**
 * The key the teardown step's delete writes when the whole cluster is being destroyed (`pulumi destroy`):
 * a member's leave that reads it stops etcd and wipes its data without removing the member through the
 * others in turns (every member is leaving). The teardown step's create deletes it.
 */
export function teardownMarkerKey(clusterName: string): string {
    return `${coordinationPrefix(clusterName)}/teardown`;
}

/**
 * How long a teardown marker lives (its lease), seconds: long enough for the resources that depend on the
 * cluster to be deleted before the members leave; a marker that outlives its destroy (a destroy that
 * stopped, or a teardown deleted on its own) ends by itself, and until then the next `pulumi up` clears it.
 */
export const TEARDOWN_MARKER_TTL_SECONDS = 1800;

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
