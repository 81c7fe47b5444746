/**
 * etcd settings as components take them (`EtcdOptions`, every field optional) and as they are resolved
 * (`EtcdConfig`: the config schema's output, defaults applied). One zod schema validates both the stack
 * config and component arguments; `etcdSettingsIssues` holds the cross-field rules both share.
 */
import { z } from "zod";
import { EtcdConfig, EtcdSchema } from "../config/schema";
import { MemberFlagSettings } from "./flags";
import { dataDirProblems } from "./paths";
import { pinnedSha256, versionFeatures } from "./version";

/** etcd settings for EtcdCluster. Every field is optional; defaults are those of `etcd-ha:etcd`. */
export interface EtcdOptions {
    /** etcd release, e.g. `3.5.21` (3.4, 3.5 or 3.6). */
    version?: string;
    /** Client, peer and metrics ports. Default 2379, 2380, 2381. */
    ports?: EtcdPortOptions;
    /** Raft heartbeat in ms. Default 100. */
    heartbeatIntervalMs?: number;
    /** Election timeout in ms (at least 5× the heartbeat). Default 1000. */
    electionTimeoutMs?: number;
    /** Backend quota in bytes. Default 2 GiB, at most 8 GiB. */
    quotaBackendBytes?: number;
    /** History compaction: mode `periodic` (retention `8h`) or `revision` (retention a count). */
    autoCompaction?: EtcdAutoCompactionOptions;
    /** Raft entries between snapshots. Default 10000. */
    snapshotCount?: number;
    /** Snapshot files kept. Default 5. */
    maxSnapshots?: number;
    /** WAL files kept. Default 5. */
    maxWals?: number;
    /** Data directory. Default `/var/lib/etcd`. */
    dataDir?: string;
    /** Also listen on 127.0.0.1 for local clients. Default true. */
    listenLocalhost?: boolean;
    /** Certificates: key algorithm, validity, early renewal, extra SANs. */
    pki?: EtcdPkiOptions;
    /** Binaries: `download` (pinned, sha256-verified) or `push` a local tarball; arch; sha256; mirror. */
    install?: EtcdInstallOptions;
}

/** Client, peer and metrics ports. */
export interface EtcdPortOptions {
    /** Client port (https). Default 2379. */
    client?: number;
    /** Peer port (https). Default 2380. */
    peer?: number;
    /** Metrics and health port (plain http). Default 2381. */
    metrics?: number;
}

/** History compaction. */
export interface EtcdAutoCompactionOptions {
    /** `periodic` (default) or `revision`. */
    mode?: string;
    /** A duration such as `8h` (periodic, the default) or a revision count such as `10000` (revision). */
    retention?: string;
}

/** Certificate settings. */
export interface EtcdPkiOptions {
    /** `ECDSA` (P-256, the default) or `RSA`. */
    keyAlgorithm?: string;
    /** RSA key size: 2048 (default), 3072 or 4096. */
    rsaBits?: number;
    /** CA validity in hours. Default 87600 (10 years). */
    caValidityHours?: number;
    /** Leaf validity in hours. Default 8760 (1 year). */
    certValidityHours?: number;
    /** Leaves are re-issued within this many hours of expiry. Default 720. */
    earlyRenewalHours?: number;
    /**
     * Re-issue every leaf certificate now: a token (1-64 of `A-Za-z0-9._:-`, e.g. a date such as `2026-12-07`).
     * Each change (setting it, changing it, removing it) replaces every leaf certificate (keys and CA stay; new
     * serial and validity), and the members restart in turn as for a time-based renewal. Default unset.
     */
    renew?: string;
    /** Extra SANs on every server certificate. */
    serverCertSans?: string[];
    /** Extra SANs on every peer certificate. */
    peerCertSans?: string[];
    /** More CA certificates (PEM) members and clients trust besides the signing CA (a CA rotation's "trust both" phase). */
    trustedCaCerts?: string[];
}

/** How the etcd binaries get onto the host. */
export interface EtcdInstallOptions {
    /** `download` (default: the pinned release, sha256-verified) or `push` (a local tarball, air-gapped). */
    method?: string;
    /** `amd64` (default) or `arm64`. */
    arch?: string;
    /** With `push`: path of the release tarball on the operator's machine. */
    tarball?: string;
    /** The tarball's sha256. Default: the pinned value for the version. */
    sha256?: string;
    /** With `download`: a mirror with the release layout. */
    baseUrl?: string;
}

// EtcdOptions must stay assignable to what the schema accepts.
const _assignable: (o: EtcdOptions) => z.input<typeof EtcdSchema> = (o) => o as z.input<typeof EtcdSchema>;
void _assignable;

/** A problem with etcd settings: path below the etcd key, and what to do. */
export interface SettingsIssue {
    path: (string | number)[];
    message: string;
}

/** Cross-field rules on resolved etcd settings (each field is already valid on its own). */
export function etcdSettingsIssues(etcd: EtcdConfig): SettingsIssue[] {
    const out: SettingsIssue[] = [];
    const add = (path: (string | number)[], message: string) => out.push({ path, message });
    const p = etcd.ports;
    const named: [string, number][] = [["client", p.client], ["peer", p.peer], ["metrics", p.metrics]];
    for (let i = 0; i < named.length; i++) {
        for (let j = i + 1; j < named.length; j++) {
            if (named[i][1] === named[j][1]) {
                add(["ports", named[j][0]], `port ${named[j][1]} collides with etcd.ports.${named[i][0]}: give each port its own number (defaults 2379/2380/2381)`);
            }
        }
    }
    for (const m of dataDirProblems(etcd.dataDir)) add(["dataDir"], m);
    if (etcd.electionTimeoutMs < 5 * etcd.heartbeatIntervalMs) {
        add(["electionTimeoutMs"], `${etcd.electionTimeoutMs} ms is less than 5 × heartbeatIntervalMs (${etcd.heartbeatIntervalMs} ms), which etcd refuses: use at least ${5 * etcd.heartbeatIntervalMs} (10× is recommended)`);
    }
    if (etcd.autoCompaction.mode === "revision" && !/^\d+$/.test(etcd.autoCompaction.retention)) {
        add(["autoCompaction", "retention"], `with mode revision the retention is a revision count such as 10000 (got "${etcd.autoCompaction.retention}")`);
    }
    if (etcd.install.method === "push" && etcd.install.tarball === undefined) {
        add(["install", "tarball"], "is required with install.method push: the path of the etcd release tarball on this machine");
    }
    if (etcd.install.method === "push" && etcd.install.baseUrl !== undefined) {
        add(["install", "baseUrl"], "only applies to install.method download: remove it, or switch the method to download");
    }
    if (releaseSha256(etcd) === undefined) {
        add(["install", "sha256"], `etcd ${etcd.version} (${etcd.install.arch}) is not in the pinned release table: set etcd.install.sha256 to the tarball's sha256 from the release's SHA256SUMS, or pick a pinned version`);
    }
    const bad = versionFeatures(etcd.version).knownBad;
    if (bad) add(["version"], bad);
    if (etcd.pki.certValidityHours > etcd.pki.caValidityHours) {
        add(["pki", "certValidityHours"], `${etcd.pki.certValidityHours} h outlives the CA (${etcd.pki.caValidityHours} h): shorten it or lengthen caValidityHours`);
    }
    if (etcd.pki.earlyRenewalHours >= etcd.pki.certValidityHours) {
        add(["pki", "earlyRenewalHours"], `${etcd.pki.earlyRenewalHours} h is not shorter than certValidityHours (${etcd.pki.certValidityHours} h), so certificates would renew on every run`);
    }
    return out;
}

/** The sha256 of the release tarball: the configured one, else the pinned one (undefined when neither). */
export function releaseSha256(etcd: EtcdConfig): string | undefined {
    return etcd.install.sha256 ?? pinnedSha256(etcd.version, etcd.install.arch);
}

/** The tuning flags of a member (same on every member), taken from resolved settings. */
export function tuningOf(etcd: EtcdConfig): Pick<MemberFlagSettings, "listenLocalhost" | "heartbeatIntervalMs" | "electionTimeoutMs" | "quotaBackendBytes" | "autoCompaction" | "snapshotCount" | "maxSnapshots" | "maxWals"> {
    return {
        listenLocalhost: etcd.listenLocalhost,
        heartbeatIntervalMs: etcd.heartbeatIntervalMs,
        electionTimeoutMs: etcd.electionTimeoutMs,
        quotaBackendBytes: etcd.quotaBackendBytes,
        autoCompaction: etcd.autoCompaction,
        snapshotCount: etcd.snapshotCount,
        maxSnapshots: etcd.maxSnapshots,
        maxWals: etcd.maxWals,
    };
}

/** Resolves component options: defaults applied, every problem reported (paths below `etcd`). */
export function resolveEtcdOptions(o: EtcdOptions | undefined): { ok: true; value: EtcdConfig } | { ok: false; issues: SettingsIssue[] } {
    const parsed = EtcdSchema.safeParse(o ?? {});
    if (!parsed.success) {
        return { ok: false, issues: parsed.error.issues.map((i) => ({ path: i.path.map((k) => (typeof k === "symbol" ? String(k) : k)), message: i.message })) };
    }
    const issues = etcdSettingsIssues(parsed.data);
    return issues.length > 0 ? { ok: false, issues } : { ok: true, value: parsed.data };
}
