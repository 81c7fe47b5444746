/**
 * The etcd member's flag set and systemd unit, rendered from typed settings by pure, version-aware
 * functions. Flags go on the unit's ExecStart line (never a YAML config file), so the TLS settings are
 * visible to `ps` and kube-bench (CIS 2.1–2.7).
 */
import { PKI_DIR } from "../pki/certTable";
import { EtcdPorts, url } from "../topology/planner";
import { versionFeatures } from "./version";

/** Where the binaries are installed. */
export const BIN_DIR = "/usr/local/bin";
/** The unit file. */
export const UNIT_PATH = "/etc/systemd/system/etcd.service";
/**
 * The bootstrap settings (`ETCD_INITIAL_CLUSTER`, `_STATE`, `_TOKEN`), written by the start step when the
 * member first starts: bootstrapping a new cluster or joining a running one is decided there, at run time.
 * etcd reads them only while its data dir is empty, so they live outside the unit: a membership change
 * rewrites this file and never the unit, and no running member is restarted for it.
 */
export const BOOTSTRAP_ENV_PATH = "/etc/etcd/bootstrap.env";

/**
 * TLS 1.2 cipher suites (ECDHE with AES-GCM only; TLS 1.3 suites are not configurable). CHACHA20 is left
 * out on purpose: etcd 3.4 and 3.5+ spell its name differently, and these four are spelled alike in both.
 */
export const CIPHER_SUITES = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/** Everything the flag set of one member depends on. */
export interface MemberFlagSettings {
    /** etcd version (`3.5.21`); selects flag names. */
    version: string;
    /** Member name. */
    name: string;
    /** The member's IPv4 address (listen and advertise). */
    address: string;
    ports: EtcdPorts;
    dataDir: string;
    /**
     * Also listen on `https://127.0.0.1:<client>` and `http://127.0.0.1:<metrics>` for a co-located
     * kube-apiserver and local tools. Default true; only hosts sharing one network stack turn it off.
     */
    listenLocalhost: boolean;
    heartbeatIntervalMs: number;
    electionTimeoutMs: number;
    quotaBackendBytes: number;
    autoCompaction: { mode: "periodic" | "revision"; retention: string };
    snapshotCount: number;
    maxSnapshots: number;
    maxWals: number;
}

/** One flag: name without the leading dashes, and its value. */
export type Flag = [name: string, value: string];

/**
 * The member's flags in a stable order. Always: mutual TLS on client and peer ports with the etcd CA,
 * explicit `auto-tls=false`, pre-vote, strict reconfiguration checks, initial corruption check, metrics and
 * health on a separate plain-HTTP listener. Never: `enable-v2`, `force-new-cluster`, `unsafe-no-fsync`.
 */
export function etcdFlags(s: MemberFlagSettings): Flag[] {
    const f = versionFeatures(s.version);
    const clientUrl = url("https", s.address, s.ports.client);
    const listenClient = s.listenLocalhost ? `${clientUrl},${url("https", "127.0.0.1", s.ports.client)}` : clientUrl;
    const metrics = url("http", s.address, s.ports.metrics);
    const listenMetrics = s.listenLocalhost ? `${metrics},${url("http", "127.0.0.1", s.ports.metrics)}` : metrics;
    const peerUrl = url("https", s.address, s.ports.peer);
    const flags: Flag[] = [
        ["name", s.name],
        ["data-dir", s.dataDir],
        ["listen-client-urls", listenClient],
        ["advertise-client-urls", clientUrl],
        ["listen-peer-urls", peerUrl],
        ["initial-advertise-peer-urls", peerUrl],
        ["listen-metrics-urls", listenMetrics],
        ["metrics", "basic"],
        // Client TLS (CIS 2.1-2.3).
        ["cert-file", `${PKI_DIR}/server.crt`],
        ["key-file", `${PKI_DIR}/server.key`],
        ["trusted-ca-file", `${PKI_DIR}/ca.crt`],
        ["client-cert-auth", "true"],
        ["auto-tls", "false"],
        // Peer TLS (CIS 2.4-2.7).
        ["peer-cert-file", `${PKI_DIR}/peer.crt`],
        ["peer-key-file", `${PKI_DIR}/peer.key`],
        ["peer-trusted-ca-file", `${PKI_DIR}/ca.crt`],
        ["peer-client-cert-auth", "true"],
        ["peer-auto-tls", "false"],
        ["cipher-suites", CIPHER_SUITES.join(",")],
    ];
    if (f.tlsMinVersion) flags.push(["tls-min-version", "TLS1.2"]);
    flags.push(
        ["heartbeat-interval", String(s.heartbeatIntervalMs)],
        ["election-timeout", String(s.electionTimeoutMs)],
        ["pre-vote", "true"],
        ["strict-reconfig-check", "true"],
        ["quota-backend-bytes", String(s.quotaBackendBytes)],
        ["auto-compaction-mode", s.autoCompaction.mode],
        ["auto-compaction-retention", s.autoCompaction.retention],
        ["snapshot-count", String(s.snapshotCount)],
        ["max-snapshots", String(s.maxSnapshots)],
        ["max-wals", String(s.maxWals)],
        ["logger", "zap"],
        ["log-outputs", "stderr"],
    );
    if (f.featureGates) {
        flags.push(["feature-gates", "InitialCorruptCheck=true,CompactHashCheck=true"], ["watch-progress-notify-interval", "5s"]);
    } else {
        flags.push(["experimental-initial-corrupt-check", "true"]);
        if (f.compactHashCheckFlag) flags.push(["experimental-compact-hash-check-enabled", "true"]);
        flags.push(["experimental-watch-progress-notify-interval", "5s"]);
    }
    return flags;
}

/** Flags that must never be rendered (checked by tests and by `renderUnit`). */
export const FORBIDDEN_FLAGS = ["enable-v2", "force-new-cluster", "unsafe-no-fsync", "experimental-enable-v2v3", "enable-pprof"];

/** Unit settings beyond the flags. */
export interface UnitSettings extends MemberFlagSettings {
    /** Cluster name (in the description). */
    clusterName: string;
    /** CPU architecture (3.4 on arm64 needs ETCD_UNSUPPORTED_ARCH). */
    arch: "amd64" | "arm64";
}

/**
 * The etcd unit's sandbox (systemd 247+; older versions ignore what they do not know, with a warning). etcd
 * runs as `etcd` without capabilities and writes only its data dir; it needs TCP (clients and peers), Unix
 * and netlink sockets (Go's interface lookups) and the system calls of an ordinary service. A filtered call
 * fails with EPERM instead of killing etcd. `systemd-analyze security etcd.service` rates it 1.5 ("OK") on
 * systemd 252, where the unit without these lines rated 8.3 ("EXPOSED").
 */
export const UNIT_SANDBOX: readonly string[] = [
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallErrorNumber=EPERM",
    "RemoveIPC=yes",
    "UMask=0077",
];

/**
 * The systemd unit: Type=notify (etcd reports ready once it has joined the cluster), runs as `etcd`,
 * restarts on failure, 40000 file descriptors, best-effort I/O priority 0 (etcd's tuning guide), and
 * the sandbox UNIT_SANDBOX (only the data dir writable, no capabilities, filtered system calls).
 */
export function renderUnit(s: UnitSettings): string {
    const flags = etcdFlags(s);
    for (const [name, value] of flags) {
        if (FORBIDDEN_FLAGS.includes(name)) throw new Error(`refusing to render --${name}`);
        if (/[\s"'\\$%;]/.test(value)) throw new Error(`--${name} value ${JSON.stringify(value)} has a character a unit file would reinterpret`);
    }
    const f = versionFeatures(s.version);
    const env = s.arch === "arm64" && f.arm64NeedsUnsupportedArch ? ["Environment=ETCD_UNSUPPORTED_ARCH=arm64"] : [];
    return [
        "# Managed by etcd-ha (Pulumi). Local edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        `Description=etcd member ${s.name} of cluster ${s.clusterName}`,
        "Documentation=https://etcd.io/docs/",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "User=etcd",
        "Group=etcd",
        ...env,
        `EnvironmentFile=-${BOOTSTRAP_ENV_PATH}`,
        `ExecStart=${BIN_DIR}/etcd \\`,
        ...flags.map(([n, v], i) => `  --${n}=${v}${i === flags.length - 1 ? "" : " \\"}`),
        "Restart=on-failure",
        "RestartSec=5s",
        "TimeoutStartSec=300",
        "LimitNOFILE=40000",
        "IOSchedulingClass=best-effort",
        "IOSchedulingPriority=0",
        ...UNIT_SANDBOX,
        `ReadWritePaths=${s.dataDir}`,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** A unit file's sections as key/value lists (continuation lines joined; comments and blank lines skipped). */
export function parseUnitSections(text: string): Record<string, [string, string][]> {
    const sections: Record<string, [string, string][]> = {};
    let current = "";
    const joined = text.replace(/\\\n/g, " ");
    for (const raw of joined.split("\n")) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#")) continue;
        const sec = /^\[(\w+)\]$/.exec(line);
        if (sec) {
            current = sec[1];
            sections[current] = [];
            continue;
        }
        const eq = line.indexOf("=");
        if (eq < 0 || current === "") throw new Error(`unit line outside a section or without '=': ${line}`);
        sections[current].push([line.slice(0, eq), line.slice(eq + 1).trim()]);
    }
    return sections;
}

/** Parses a rendered unit back into sections and the ExecStart flags (used by tests and the lab). */
export function parseUnit(text: string): { sections: Record<string, [string, string][]>; execStart: { binary: string; flags: Map<string, string> } } {
    const sections = parseUnitSections(text);
    const exec = (sections.Service ?? []).filter(([k]) => k === "ExecStart");
    if (exec.length !== 1) throw new Error(`expected one ExecStart, found ${exec.length}`);
    const [binary, ...args] = exec[0][1].split(/\s+/);
    const flags = new Map<string, string>();
    for (const a of args) {
        const m = /^--([a-z0-9-]+)=(.*)$/.exec(a);
        if (!m) throw new Error(`ExecStart argument is not --flag=value: ${a}`);
        if (flags.has(m[1])) throw new Error(`--${m[1]} given twice`);
        flags.set(m[1], m[2]);
    }
    return { sections, execStart: { binary, flags } };
}
