/**
 * Which directories the data dir and the snapshot dir may be, as pure rules. A member's removal or
 * replacement wipes etcd's data inside the data dir (its `member/` dir and this program's staging dirs,
 * nothing else), and the snapshot service prunes old snapshots in the snapshot dir; a data dir that is a
 * system directory, or that overlaps the PKI, config, binaries, state or snapshot directories, would put
 * other files in the way of those operations or let them touch each other. No Pulumi imports.
 */
import { PKI_DIR } from "../pki/certTable";
import { BIN_DIR } from "./flags";

/** Where the unit, bootstrap settings, etcdctl environment and PKI live. */
export const CONFIG_DIR = "/etc/etcd";
/** This program's state on a member (root only): what etcd was last started with, releases, restore markers. */
export const STATE_DIR = "/var/lib/etcd-ha";
/** Where tarballs and uploads are staged before they are checked and installed (writable by the SSH user through SFTP). */
export const STAGING_DIR = "/var/tmp/etcd-ha";

/**
 * Directories the data dir may not be: the system's own, whose other contents a data dir would share
 * (`/home` and `/root` as users' homes).
 */
export const SYSTEM_DIRS: readonly string[] = [
    "/home",
    "/root",
    "/srv",
    "/opt",
    "/mnt",
    "/media",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/mail",
    "/var/opt",
    "/var/backups",
    "/var/local",
    "/usr/local",
];

/** Trees a data dir may not be in: read-only, volatile, or owned by the system or the package manager. */
export const FORBIDDEN_TREES: readonly string[] = ["/etc", "/usr", "/boot", "/efi", "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/run", "/var/lock", "/lib", "/lib64", "/bin", "/sbin"];

/** `a` equals `b` or lies inside it (both absolute, normalised). */
export function isWithin(a: string, b: string): boolean {
    return a === b || a.startsWith(b === "/" ? "/" : `${b}/`);
}

/** Two directories overlap when one is the other or contains it. */
export function overlaps(a: string, b: string): boolean {
    return isWithin(a, b) || isWithin(b, a);
}

/** The directories this program owns on a member, by what they hold (the data and snapshot dirs must overlap none). */
export const OWNED_DIRS: readonly { dir: string; what: string }[] = [
    { dir: CONFIG_DIR, what: "the config dir (unit settings, etcdctl environment)" },
    { dir: PKI_DIR, what: "the PKI dir (certificates and keys)" },
    { dir: BIN_DIR, what: "the binaries dir" },
    { dir: STATE_DIR, what: "this program's state dir (releases, markers)" },
    { dir: STAGING_DIR, what: "the staging dir (tarballs, uploads)" },
];

/** How directory `a` overlaps `b`: "is", "lies inside" or "contains" (undefined when apart). */
function overlap(a: string, b: string): string | undefined {
    if (a === b) return "is";
    if (isWithin(a, b)) return "lies inside";
    return isWithin(b, a) ? "contains" : undefined;
}

/** `<dir> is|lies inside|contains <what> <owned dir>: <advice>` for every directory this program owns that `dir` overlaps. */
function ownedOverlaps(dir: string, advice: string): string[] {
    return OWNED_DIRS.flatMap((o) => {
        const how = overlap(dir, o.dir);
        return how ? [`"${dir}" ${how} ${o.what} ${o.dir}: ${advice}`] : [];
    });
}

/**
 * What is wrong with `dataDir` as etcd's data dir (empty when it is fine): not normalised, `/` or a top-level
 * directory, a system directory or inside a forbidden tree, or overlapping a directory this program owns.
 * The snapshot dir is checked against it by `snapshotDirProblems`.
 */
export function dataDirProblems(dataDir: string): string[] {
    const out: string[] = [];
    const parts = dataDir.split("/");
    if (!dataDir.startsWith("/") || dataDir.endsWith("/") || parts.slice(1).some((p) => p === "" || p === "." || p === "..")) {
        return [`"${dataDir}" is not a normalised absolute path (no trailing '/', '//', '.' or '..'): write it as /var/lib/etcd`];
    }
    if (parts.length <= 2) {
        out.push(`"${dataDir}" is a top-level directory: a member's removal wipes etcd's data inside it, so give etcd a directory of its own such as ${dataDir === "/" ? "/var/lib/etcd" : `${dataDir}/etcd`}`);
        return out;
    }
    const tree = FORBIDDEN_TREES.find((t) => isWithin(dataDir, t));
    if (tree) out.push(`"${dataDir}" is inside ${tree}, which is not a place for etcd's data (system-managed, read-only or volatile): use a directory such as /var/lib/etcd`);
    else if (SYSTEM_DIRS.includes(dataDir) || /^\/home\/[^/]+$/.test(dataDir)) {
        out.push(`"${dataDir}" is a system directory shared with other software: give etcd a directory of its own such as ${dataDir}/etcd`);
    }
    return [...out, ...ownedOverlaps(dataDir, "keep etcd's data dir apart from it")];
}

/**
 * What is wrong with the snapshot dir besides its own rules: overlapping etcd's data dir (when known; `key`
 * names it in the message) or a directory this program owns.
 */
export function snapshotDirProblems(snapshotDir: string, dataDir?: { dir: string; key: string }): string[] {
    return [
        ...(dataDir && overlaps(snapshotDir, dataDir.dir)
            ? [`"${snapshotDir}" overlaps ${dataDir.key} ${dataDir.dir}: keep snapshots apart from etcd's data (a member's removal wipes that data, a restore moves it aside), e.g. /var/backups/etcd`]
            : []),
        ...ownedOverlaps(snapshotDir, "keep snapshots apart from it"),
    ];
}
