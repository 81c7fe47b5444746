/**
 * Stack config validation and resolution: raw `etcd-ha:*` values in, either a fully resolved model
 * (members placed, addresses and VM ids allocated, sizes defaulted, topology planned) or every problem
 * at once, each with its config key path and what to do. Pure: no Pulumi imports.
 */
import { z } from "zod";
import {
    cidrContains,
    isReservedInCidr,
    offsetInCidr,
    parseRange,
    allocateFromRange,
    ipToInt,
    isCidr4,
    networkOf,
} from "../net/ip";
import { DEFAULT_PORTS, EtcdPorts, membershipProblems, planTopology, spreadMembers, TopologyPlan, PlanWarning } from "../topology/planner";
import { etcdSettingsIssues } from "../etcd/options";
import { snapshotDirProblems } from "../etcd/paths";
import {
    DEFAULT_SIZES,
    EtcdConfig,
    HypervisorConfig,
    PROJECT,
    ParsedStackConfig,
    SECRET_KEYS,
    STRING_KEYS,
    SecretKey,
    SizeConfig,
    SnapshotsConfig,
    RestoreConfig,
    StackConfigSchema,
} from "./schema";

/** One problem: the config key path (`etcd-ha:members[3].address`) and what is wrong / what to do. */
export interface ConfigIssue {
    path: string;
    message: string;
}

/** The largest VM id Proxmox VE accepts (its `pve-vmid` format: 100 to 999999999). */
export const PVE_MAX_VMID = 999999999;
/** The longest DNS name (a member's FQDN goes into certificate SANs and cloud-init). */
const MAX_FQDN = 253;

/** Whether the program registers HA objects (resources, rules or groups) for this `proxmox` block. */
function haOn(p: NonNullable<ParsedStackConfig["proxmox"]>): boolean {
    return p.clustered && (p.ha.enabled ?? p.clustered);
}

/** The PVE 8 HA group of a node, as components/proxmox/plan.ts names it: `<clusterName>-<node>`, cut to 40 characters. */
function haGroupName(clusterName: string, node: string): string {
    return `${clusterName}-${node}`.slice(0, 40);
}

/** Thrown by `loadStackConfig` when the config is invalid; carries every issue. */
export class ConfigValidationError extends Error {
    readonly issues: ConfigIssue[];
    constructor(issues: ConfigIssue[]) {
        super(
            `invalid stack configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
                issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n"),
        );
        this.name = "ConfigValidationError";
        this.issues = issues;
    }
}

/** A member fully resolved for the infrastructure and etcd layers. */
export interface ResolvedMember {
    /** Position in the member list. */
    index: number;
    name: string;
    address: string;
    /** FQDN for certificate SANs and /etc/hosts. */
    fqdn: string;
    /** Hypervisor (Proxmox node, or the host's declared failure domain). */
    hypervisor?: string;
    /** Proxmox VM id (Proxmox mode only). */
    vmId?: number;
    /** VM size (Proxmox mode only). */
    size?: Required<SizeConfig>;
    /** SSH port and user for remote commands. */
    sshPort: number;
    sshUser: string;
    /** The pinned public SSH host key: hosts mode's, or a Proxmox VM's adopted one (other VMs get a generated key). */
    hostKey?: string;
}

type ParsedProxmox = NonNullable<ParsedStackConfig["proxmox"]>;

/** `proxmox` with every default resolved (HA switch, image file name, firewall sources). */
export interface ResolvedProxmox extends Omit<ParsedProxmox, "image" | "firewall"> {
    haEnabled: boolean;
    image: { url: string; sha256: string; fileName: string };
    firewall: {
        enabled: boolean;
        adminCidrs: string[];
        clientCidrs: string[];
        metricsCidrs: string[];
        extraRules: { port: string; proto: "tcp" | "udp"; sources: string[]; comment?: string }[];
    };
}

/** Inbound rules a stacked control-plane VM gets by default besides etcd's (CNI ports are the operator's to add). */
export const STACKED_EXTRA_RULES: readonly { port: string; proto: "tcp" | "udp"; sources?: string[]; comment?: string }[] = [
    { port: "6443", proto: "tcp", comment: "kube-apiserver" },
    { port: "10250", proto: "tcp", comment: "kubelet" },
];

/** The datastore file name of a cloud image URL: its base name with the extension replaced by `.qcow2`. */
export function imageFileName(url: string): string {
    const base = url.replace(/[?#].*$/, "").split("/").pop() || "cloud-image";
    const stem = base.replace(/\.(img|qcow2|raw)$/i, "").replace(/[^A-Za-z0-9._-]/g, "-");
    return `${stem}.qcow2`;
}

/** The validated, resolved stack configuration index.ts builds from. */
export interface ResolvedConfig {
    clusterName: string;
    topology: "external" | "stacked";
    /** `proxmox`: the program creates VMs; `hosts`: it uses existing machines. */
    mode: "proxmox" | "hosts";
    proxmox?: ResolvedProxmox;
    hypervisors: HypervisorConfig[];
    network?: NonNullable<ParsedStackConfig["network"]>;
    members: ResolvedMember[];
    etcd: EtcdConfig;
    ssh: ParsedStackConfig["ssh"];
    /** Members to replace in this run (at most one). */
    replace: string[];
    /** Scheduled snapshots. */
    snapshots: SnapshotsConfig;
    /** A restore to run (day-2). */
    restore?: RestoreConfig;
    plan: TopologyPlan;
    warnings: PlanWarning[];
}

export type ValidationResult = { ok: true; config: ResolvedConfig } | { ok: false; issues: ConfigIssue[] };

/** `etcd-ha:members[3].address` from a key and a zod-style path. */
export function keyPath(path: readonly PropertyKey[]): string {
    let out = `${PROJECT}:`;
    path.forEach((p, i) => {
        if (typeof p === "number") out += `[${p}]`;
        else out += i === 0 ? String(p) : `.${String(p)}`;
    });
    return out;
}

function describe(v: unknown): string {
    if (v === null) return "null";
    if (Array.isArray(v)) return "a list";
    if (typeof v === "string") return JSON.stringify(v.length > 60 ? v.slice(0, 57) + "..." : v);
    if (typeof v === "object") return "an object";
    return String(v);
}

const ARTICLE: Record<string, string> = {
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
    array: "a list",
    object: "an object (a YAML mapping)",
};

/** Readable message for one zod issue (custom messages kept, the offending value appended). */
function issueMessage(iss: z.core.$ZodIssue): string {
    const input = (iss as { input?: unknown }).input;
    const got = input === undefined ? "" : ` (got ${describe(input)})`;
    switch (iss.code) {
        case "invalid_type":
            if (input === undefined) return "is required";
            return `must be ${ARTICLE[iss.expected] ?? iss.expected}${got}`;
        case "invalid_value":
            return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(", ")}${got}`;
        case "too_small":
            if (iss.origin === "array") return `must have at least ${iss.minimum} entr${Number(iss.minimum) === 1 ? "y" : "ies"}`;
            if (iss.origin === "string") return "must not be empty";
            return `must be at least ${iss.minimum}${got}`;
        case "too_big":
            if (iss.message && !iss.message.startsWith("Too big")) return `${iss.message}${got}`;
            return `must be at most ${iss.maximum}${got}`;
        case "invalid_union": {
            const values = iss.errors.flat().flatMap((e) => (e.code === "invalid_value" ? e.values : []));
            if (values.length) return `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}${got}`;
            return `has an invalid value${got}`;
        }
        default:
            return `${iss.message}${got}`;
    }
}

/** Converts zod issues (for one top-level key) into config issues. */
function zodIssues(err: z.ZodError, prefix: readonly PropertyKey[]): ConfigIssue[] {
    const out: ConfigIssue[] = [];
    for (const iss of err.issues) {
        const path = [...prefix, ...iss.path];
        if (iss.code === "unrecognized_keys") {
            for (const k of iss.keys) {
                out.push({ path: keyPath([...path, k]), message: "is not a known key here: check the spelling against the README's config reference" });
            }
        } else {
            out.push({ path: keyPath(path), message: issueMessage(iss) });
        }
    }
    return out;
}

/**
 * Turns the raw `etcd-ha:*` strings of a stack (as Pulumi stores them: plain strings, structured values
 * as JSON) into values. Keys are given without the namespace. JSON errors become issues.
 */
export function decodeRawConfig(entries: Readonly<Record<string, string>>): { raw: Record<string, unknown>; issues: ConfigIssue[]; undecodable: Set<string> } {
    const raw: Record<string, unknown> = {};
    const issues: ConfigIssue[] = [];
    const undecodable = new Set<string>();
    for (const [key, text] of Object.entries(entries)) {
        if (key in SECRET_KEYS) continue;
        if (STRING_KEYS.has(key)) {
            raw[key] = text;
            continue;
        }
        try {
            raw[key] = JSON.parse(text);
        } catch {
            // Keep the text so the key still counts as given (no misleading "missing" report).
            raw[key] = text;
            undecodable.add(key);
            issues.push({ path: keyPath([key]), message: `is not valid structured config (${describe(text)}): write it as a YAML mapping or list in the stack file` });
        }
    }
    return { raw, issues, undecodable };
}

function duplicates<T>(items: readonly T[], key: (t: T) => string | number | undefined): Map<number, number> {
    // index of a later duplicate → index of its first occurrence
    const first = new Map<string | number, number>();
    const dup = new Map<number, number>();
    items.forEach((it, i) => {
        const k = key(it);
        if (k === undefined) return;
        if (first.has(k)) dup.set(i, first.get(k)!);
        else first.set(k, i);
    });
    return dup;
}

/**
 * Validates raw config values (keys without namespace; structured values already decoded) and resolves
 * them. `secrets` names the secret keys that are set; `reported` names keys already reported as invalid
 * (e.g. not decodable), which count as given but are not parsed again. Every problem is reported, none is
 * thrown.
 */
export function validateStackConfig(
    raw: Readonly<Record<string, unknown>>,
    secrets: ReadonlySet<string>,
    reported: ReadonlySet<string> = new Set(),
): ValidationResult {
    const issues: ConfigIssue[] = [];
    const add = (path: readonly PropertyKey[], message: string) => issues.push({ path: keyPath(path), message });
    const shape = StackConfigSchema.shape;

    // 1. Per-key structural parse, so one broken key does not hide problems in the others.
    const parsed: Partial<Record<keyof typeof shape, unknown>> = {};
    const okKeys = new Set<string>();
    for (const key of Object.keys(raw)) {
        if (!(key in shape)) {
            add([key], `is not a known key: check the spelling against the README's config reference`);
        }
    }
    for (const key of Object.keys(shape) as (keyof typeof shape)[]) {
        if (reported.has(key)) continue;
        const r = (shape[key] as z.ZodType).safeParse(raw[key], { reportInput: true });
        if (r.success) {
            parsed[key] = r.data;
            okKeys.add(key);
        } else {
            issues.push(...zodIssues(r.error, [key]));
        }
    }
    const c = parsed as Partial<ParsedStackConfig>;
    const has = (k: keyof typeof shape) => okKeys.has(k);

    // 2. Mode: hosts xor Proxmox members.
    const hostsGiven = raw.hosts !== undefined;
    const membersGiven = raw.members !== undefined;
    const poolGiven = raw.memberPool !== undefined;
    let mode: "proxmox" | "hosts" | undefined;
    if (hostsGiven && (membersGiven || poolGiven)) {
        add(["hosts"], `both hosts and Proxmox members (${membersGiven ? `${PROJECT}:members` : `${PROJECT}:memberPool`}) are set: use ${PROJECT}:hosts for existing machines or Proxmox members for new VMs, not both`);
    } else if (hostsGiven) {
        mode = "hosts";
        for (const k of ["proxmox", "hypervisors", "vmSize"] as const) {
            if (raw[k] !== undefined) add([k], `is only used with Proxmox members; remove it, or replace ${PROJECT}:hosts with ${PROJECT}:members`);
        }
    } else if (membersGiven && poolGiven) {
        add(["memberPool"], `is mutually exclusive with ${PROJECT}:members: list the members explicitly or give a count and range, not both`);
    } else if (membersGiven || poolGiven) {
        mode = "proxmox";
    } else {
        add(["members"], `no members: set ${PROJECT}:members (Proxmox VMs), ${PROJECT}:memberPool (a count and an address range) or ${PROJECT}:hosts (existing machines)`);
    }

    // 3. Shared pieces.
    const network = has("network") ? c.network : undefined;
    if (network) {
        const { gateway, cidr } = network;
        if (gateway !== undefined) {
            if (!cidrContains(cidr, gateway)) add(["network", "gateway"], `${gateway} is outside ${PROJECT}:network.cidr ${cidr}: use an address inside it`);
            else if (isReservedInCidr(cidr, gateway)) add(["network", "gateway"], `${gateway} is the network or broadcast address of ${cidr}: use a host address`);
        }
    }
    const etcd = has("etcd") ? c.etcd! : undefined;
    if (etcd) {
        for (const issue of etcdSettingsIssues(etcd)) add(["etcd", ...issue.path], issue.message);
    }
    if (has("snapshots")) {
        const dataDir = etcd ? { dir: etcd.dataDir, key: `${PROJECT}:etcd.dataDir` } : undefined;
        for (const m of snapshotDirProblems(c.snapshots!.dir, dataDir)) add(["snapshots", "dir"], m);
    }
    if (has("restore") && c.restore?.fromSnapshot.startsWith("s3://") && !(has("snapshots") && c.snapshots?.s3 !== undefined)) {
        add(["restore", "fromSnapshot"], "is an s3:// object, but snapshots.s3 is not set: the members download it from that store with its keys; set snapshots.s3 (endpoint, bucket, caPem) and the two s3 key secrets");
    }
    if (has("snapshots") && c.snapshots!.s3 !== undefined) {
        for (const k of [SECRET_KEYS.s3AccessKeyId, SECRET_KEYS.s3SecretAccessKey]) {
            if (!secrets.has(k)) add([k], `is not set: snapshots.s3 copies snapshots with the store's keys; run \`pulumi config set --secret ${PROJECT}:${k} <value>\``);
        }
    }
    if (secrets.has(SECRET_KEYS.etcdCaCert) !== secrets.has(SECRET_KEYS.etcdCaKey)) {
        const missing = secrets.has(SECRET_KEYS.etcdCaCert) ? SECRET_KEYS.etcdCaKey : SECRET_KEYS.etcdCaCert;
        add([missing], `is not set: an adopted CA needs both ${PROJECT}:etcdCaCert and ${PROJECT}:etcdCaKey (\`pulumi config set --secret ${PROJECT}:${missing} < file.pem\`), or neither to create a new CA`);
    }
    const sshPort = 22;
    if (!secrets.has(SECRET_KEYS.sshPrivateKey)) {
        add([SECRET_KEYS.sshPrivateKey], `is not set: run \`pulumi config set --secret ${PROJECT}:sshPrivateKey < ~/.ssh/id_ed25519\` (the key for SSH to the members)`);
    }

    // 4. Members.
    /** Members whose FQDN is `<name>.<network.searchDomain>` (checked for length below). */
    const fqdnNames: string[] = [];
    let members: ResolvedMember[] | undefined;
    const topology = has("topology") ? c.topology! : "external";
    const sshUser = has("ssh") ? c.ssh!.user : "ubuntu";
    const hypervisors = has("hypervisors") ? (c.hypervisors ?? []) : [];

    if (mode === "hosts" && has("hosts")) {
        const hosts = c.hosts!;
        if (hosts.length === 0) add(["hosts"], "has no hosts: list at least one (3 or 5 for HA)");
        for (const [i, j] of duplicates(hosts, (h) => h.name)) add(["hosts", i, "name"], `"${hosts[i].name}" is already used by ${PROJECT}:hosts[${j}]: names must be unique`);
        for (const [i, j] of duplicates(hosts, (h) => h.address)) add(["hosts", i, "address"], `${hosts[i].address} is already used by ${PROJECT}:hosts[${j}]: each member needs its own address`);
        const ignoreHostKeys = has("ssh") && c.ssh!.insecureIgnoreHostKeys;
        hosts.forEach((h, i) => {
            if (network && !cidrContains(network.cidr, h.address)) add(["hosts", i, "address"], `${h.address} is outside ${PROJECT}:network.cidr ${network.cidr}`);
            if (h.hostKey === undefined && !ignoreHostKeys) {
                add(
                    ["hosts", i, "hostKey"],
                    `is required: the public SSH host key of ${h.name}, one line read on the host itself (cat /etc/ssh/ssh_host_ed25519_key.pub), so no other machine at ${h.address} receives the cluster's keys; or set ${PROJECT}:ssh.insecureIgnoreHostKeys: true to accept any key (not recommended)`,
                );
            }
        });
        for (const h of hosts) if (h.fqdn === undefined) fqdnNames.push(h.name);
        members = hosts.map((h, index) => ({
            index,
            name: h.name,
            address: h.address,
            fqdn: h.fqdn ?? (network?.searchDomain ? `${h.name}.${network.searchDomain}` : h.name),
            hypervisor: h.hypervisor,
            sshPort: h.port,
            sshUser: h.user ?? sshUser,
            ...(h.hostKey !== undefined ? { hostKey: h.hostKey } : {}),
        }));
    }

    if (mode === "proxmox") {
        const proxmox = has("proxmox") ? c.proxmox : undefined;
        if (raw.proxmox === undefined) add(["proxmox"], `is required with Proxmox members: set at least ${PROJECT}:proxmox.endpoint (or clustered: false with per-hypervisor endpoints)`);
        if (raw.hypervisors === undefined || (has("hypervisors") && hypervisors.length === 0)) {
            add(["hypervisors"], "is required with Proxmox members: list the Proxmox nodes (name, bridge) that may host members");
        }
        if (raw.network === undefined) add(["network"], "is required with Proxmox members: set cidr and gateway of the member network");
        else if (network && network.gateway === undefined) add(["network", "gateway"], "is required with Proxmox members (the VMs' default gateway)");
        if (!secrets.has(SECRET_KEYS.proxmoxApiToken)) {
            add([SECRET_KEYS.proxmoxApiToken], `is not set: run \`pulumi config set --secret ${PROJECT}:proxmoxApiToken 'user@pve!token=<uuid>'\``);
        }
        if (proxmox && !proxmox.ssh.agent && !secrets.has(SECRET_KEYS.proxmoxSshPrivateKey)) {
            add([SECRET_KEYS.proxmoxSshPrivateKey], `is not set: run \`pulumi config set --secret ${PROJECT}:proxmoxSshPrivateKey < key.pem\`, or set ${PROJECT}:proxmox.ssh.agent: true`);
        }
        if (has("ssh") && c.ssh!.publicKey === undefined) {
            add(["ssh", "publicKey"], "is required with Proxmox members: the OpenSSH public key cloud-init installs for the admin user");
        }
        if (proxmox) {
            if (proxmox.image.sha256 === undefined) {
                add(["proxmox", "image", "sha256"], `is required with Proxmox members: the sha256 of ${proxmox.image.url}, from the SHA256SUMS file next to it (curl -fsSL ${proxmox.image.url.replace(/[^/]*$/, "")}SHA256SUMS | grep ${proxmox.image.url.split("/").pop()})`);
            }
            if (proxmox.clustered && proxmox.endpoint === undefined) {
                add(["proxmox", "endpoint"], "is required when proxmox.clustered is true: the API URL of any cluster node, e.g. https://pve1.kloud.lan:8006/");
            }
            if (!proxmox.clustered) {
                hypervisors.forEach((h, i) => {
                    if (h.endpoint === undefined) add(["hypervisors", i, "endpoint"], "is required for standalone hosts (proxmox.clustered: false): this node's API URL");
                });
                if (proxmox.ha.enabled === true) add(["proxmox", "ha", "enabled"], "HA needs one PVE cluster: set proxmox.clustered: true or ha.enabled: false");
            }
            const clusterName = has("clusterName") ? c.clusterName! : undefined;
            if (haOn(proxmox) && clusterName !== undefined && !/^[a-z]/.test(clusterName)) {
                const groups = proxmox.ha.pveMajor === 8;
                const example = groups ? haGroupName(clusterName, hypervisors[0]?.name ?? "pve1") : `${clusterName}-apart-1`;
                add(
                    ["clusterName"],
                    `"${clusterName}" starts with a digit, but the Proxmox HA ${groups ? "groups" : "rules"} are named after it (${example}) and Proxmox refuses a name that does not start with a letter: start the cluster name with a letter, or set ${PROJECT}:proxmox.ha.enabled: false`,
                );
            }
        }
        for (const [i, j] of duplicates(hypervisors, (h) => h.name)) add(["hypervisors", i, "name"], `"${hypervisors[i].name}" is already listed as ${PROJECT}:hypervisors[${j}]`);
        hypervisors.forEach((h, i) => {
            const b = h.bridge;
            if (b.gateway !== undefined && b.address === undefined) add(["hypervisors", i, "bridge", "gateway"], "needs bridge.address as well");
            if (b.gateway !== undefined && b.address !== undefined && isCidr4(b.address) && !cidrContains(networkOf(b.address), b.gateway)) {
                add(["hypervisors", i, "bridge", "gateway"], `${b.gateway} is outside the bridge network ${networkOf(b.address)}`);
            }
            if (b.exists && (b.address !== undefined || b.ports.length > 0)) {
                add(["hypervisors", i, "bridge", "exists"], "an existing bridge is not managed: remove address/ports, or set exists: false to let the program create it");
            }
        });
        const known = new Set(hypervisors.map((h) => h.name));
        const hvNames = hypervisors.map((h) => h.name);

        type Draft = { name: string; address: string; hypervisor?: string; vmId?: number; size?: SizeConfig; hostKey?: string; path: PropertyKey[] };
        let drafts: Draft[] | undefined;
        if (membersGiven && has("members")) {
            const list = c.members!;
            if (list.length === 0) add(["members"], "has no members: list at least one (3 or 5 for HA)");
            drafts = list.map((m, i) => ({ ...m, path: ["members", i] }));
        } else if (poolGiven && has("memberPool")) {
            const pool = c.memberPool!;
            if (pool.count === 0) add(["memberPool", "count"], "is 0: a cluster needs at least one member (3 or 5 for HA)");
            const range = parseRange(pool.addressRange)!;
            const exclude = new Set<string>(network?.gateway ? [network.gateway] : []);
            let ok = true;
            if (network) {
                for (const [end, ip] of [["start", range.start], ["end", range.end]] as const) {
                    if (!cidrContains(network.cidr, ip)) {
                        add(["memberPool", "addressRange"], `${end} address ${ip} is outside ${PROJECT}:network.cidr ${network.cidr}`);
                        ok = false;
                    }
                }
            }
            if (ok && ipToInt(range.start) > ipToInt(range.end)) {
                add(["memberPool", "addressRange"], `starts after it ends (${range.start} > ${range.end}): write it low-high`);
                ok = false;
            }
            const addrs = ok ? allocateFromRange(range, pool.count, exclude, network?.cidr) : [];
            if (ok && addrs.length < pool.count) {
                add(["memberPool", "addressRange"], `${pool.addressRange} holds only ${addrs.length} usable address(es) for ${pool.count} members: widen the range`);
            }
            for (const [i, h] of (pool.hypervisors ?? []).entries()) {
                if (!known.has(h)) add(["memberPool", "hypervisors", i], `"${h}" is not in ${PROJECT}:hypervisors (known: ${hvNames.join(", ") || "none"})`);
            }
            const prefix = pool.namePrefix ?? (topology === "stacked" ? "cp" : "etcd");
            if (addrs.length === pool.count) {
                drafts = addrs.map((address, i) => ({ name: `${prefix}${i + 1}`, address, size: pool.size, path: ["memberPool"] }));
            }
        }

        if (drafts) {
            for (const [i, j] of duplicates(drafts, (m) => m.name)) add([...drafts[i].path, "name"], `"${drafts[i].name}" is already used by ${keyPath(drafts[j].path)}: names must be unique`);
            for (const [i, j] of duplicates(drafts, (m) => m.address)) add([...drafts[i].path, "address"], `${drafts[i].address} is already used by ${keyPath(drafts[j].path)}: each member needs its own address`);
            for (const [i, j] of duplicates(drafts, (m) => m.vmId)) add([...drafts[i].path, "vmId"], `${drafts[i].vmId} is already used by ${keyPath(drafts[j].path)}: VM ids must be unique`);
            drafts.forEach((m) => {
                if (network) {
                    if (!cidrContains(network.cidr, m.address)) add([...m.path, "address"], `${m.address} is outside ${PROJECT}:network.cidr ${network.cidr}: use an address inside it`);
                    else if (m.address === network.gateway) add([...m.path, "address"], `${m.address} is the network gateway: pick another address`);
                    else if (isReservedInCidr(network.cidr, m.address)) add([...m.path, "address"], `${m.address} is the network or broadcast address of ${network.cidr}`);
                }
                hypervisors.forEach((h, j) => {
                    const bridgeIp = h.bridge.address?.split("/")[0];
                    if (bridgeIp === m.address) {
                        add([...m.path, "address"], `${m.address} is the address of ${h.name}'s bridge (${PROJECT}:hypervisors[${j}].bridge.address): the hypervisor holds it, so the VM's traffic would go to the host; pick another address`);
                    } else if (h.sshAddress === m.address) {
                        add([...m.path, "address"], `${m.address} is ${h.name}'s SSH address (${PROJECT}:hypervisors[${j}].sshAddress): pick another address for the member`);
                    }
                });
                if (m.hypervisor !== undefined && has("hypervisors") && !known.has(m.hypervisor)) {
                    add([...m.path, "hypervisor"], `"${m.hypervisor}" is not in ${PROJECT}:hypervisors (known: ${hvNames.join(", ") || "none"}): add it there or fix the name`);
                }
            });
            // VM ids: explicit, else base + address offset (stable when members are added or removed).
            const base = proxmox?.vmIdBase ?? 7000;
            const explicit = new Map(drafts.filter((m) => m.vmId !== undefined).map((m) => [m.vmId!, m]));
            const vmIds = drafts.map((m) => m.vmId ?? (network && cidrContains(network.cidr, m.address) ? base + offsetInCidr(network.cidr, m.address) : undefined));
            drafts.forEach((m, i) => {
                const other = vmIds[i] !== undefined && m.vmId === undefined ? explicit.get(vmIds[i]!) : undefined;
                if (other) add([...other.path, "vmId"], `${other.vmId} collides with the id allocated to ${m.name} (proxmox.vmIdBase + address offset): pick another vmId or change vmIdBase`);
            });
            const allocated = drafts.flatMap((m, i) => (m.vmId === undefined && vmIds[i] !== undefined ? [{ m, id: vmIds[i]! }] : []));
            const over = allocated.find((a) => a.id > PVE_MAX_VMID);
            if (over && network) {
                const maxOffset = Math.max(...allocated.map((a) => a.id - base));
                add(
                    ["proxmox", "vmIdBase"],
                    `${base} + the offset of ${over.m.address} in ${network.cidr} (${over.id - base}) gives ${over.m.name} the VM id ${over.id}, above ${PVE_MAX_VMID}, the largest Proxmox accepts: ` +
                        (PVE_MAX_VMID - maxOffset >= 100 ? `lower vmIdBase to at most ${PVE_MAX_VMID - maxOffset}, or give the member a vmId` : "give the members explicit vmIds (the network is too large for vmIdBase + offset)"),
                );
            }
            fqdnNames.push(...drafts.map((m) => m.name));
            const spreadPool = poolGiven && c.memberPool?.hypervisors?.length ? c.memberPool.hypervisors : hvNames;
            const topoSize = DEFAULT_SIZES[topology];
            const vmSize = has("vmSize") ? (c.vmSize ?? {}) : {};
            if (spreadPool.length > 0 && issues.length === 0) {
                const placed = spreadMembers(drafts, spreadPool);
                members = placed.map((m, index) => ({
                    index,
                    name: m.name,
                    address: m.address,
                    fqdn: network?.searchDomain ? `${m.name}.${network.searchDomain}` : m.name,
                    hypervisor: m.hypervisor,
                    vmId: vmIds[index],
                    size: { ...topoSize, ...stripUndefined(vmSize), ...stripUndefined(m.size ?? {}) },
                    sshPort,
                    sshUser,
                    ...(m.hostKey !== undefined ? { hostKey: m.hostKey } : {}),
                }));
            }
        }
    }

    if (network?.searchDomain !== undefined && fqdnNames.length > 0) {
        const longest = fqdnNames.reduce((a, b) => (b.length > a.length ? b : a));
        const length = longest.length + 1 + network.searchDomain.length;
        if (length > MAX_FQDN) {
            add(
                ["network", "searchDomain"],
                `makes the FQDN of ${longest} (${longest}.<searchDomain>) ${length} characters long, more than the ${MAX_FQDN} a DNS name may have (it goes into certificates and cloud-init): use a search domain of at most ${MAX_FQDN - 1 - longest.length} characters, or shorter member names`,
            );
        }
    }
    const proxmoxParsed = mode === "proxmox" && has("proxmox") ? c.proxmox! : undefined;
    if (members && proxmoxParsed && haOn(proxmoxParsed) && proxmoxParsed.ha.pveMajor === 8 && has("clusterName") && /^[a-z]/.test(c.clusterName!)) {
        // PVE 8: one HA group per node hosting members, named as components/proxmox/plan.ts names them.
        const clusterName = c.clusterName!;
        const nodes = [...new Set(members.map((m) => m.hypervisor!))];
        const room = 40 - 1 - Math.max(...nodes.map((n) => n.length));
        const fix = room >= 1 ? `shorten the cluster name to at most ${room} characters, so that every group name stays whole` : "shorten the cluster name";
        const seen = new Map<string, string>();
        for (const node of nodes) {
            const group = haGroupName(clusterName, node);
            if (!/[A-Za-z0-9]$/.test(group)) {
                add(["clusterName"], `with proxmox.ha.pveMajor 8 the HA group of ${node} is "${group}" (the first 40 characters of <clusterName>-${node}), which ends in '${group.slice(-1)}': Proxmox refuses a group name that does not end in a letter or digit; ${fix}`);
            } else if (seen.has(group)) {
                add(["clusterName"], `with proxmox.ha.pveMajor 8 the HA groups of ${seen.get(group)} and ${node} would both be "${group}" (the first 40 characters of <clusterName>-<node>): ${fix}`);
            }
            if (!seen.has(group)) seen.set(group, node);
        }
    }

    if (members && etcd) {
        // SSH and etcd share each member's address: one port each.
        const etcdPortOf = (port: number) => (Object.keys(etcd.ports) as (keyof EtcdPorts)[]).find((k) => etcd.ports[k] === port);
        if (mode === "hosts") {
            for (const m of members) {
                const clash = etcdPortOf(m.sshPort);
                if (clash) add(["hosts", m.index, "port"], `SSH port ${m.sshPort} is etcd's ${clash} port on ${m.address} (${PROJECT}:etcd.ports.${clash}): change one of them`);
            }
        } else {
            const clash = etcdPortOf(sshPort);
            if (clash) add(["etcd", "ports", clash], `${sshPort} is the members' SSH port: etcd and sshd cannot both listen on it; use another port (default ${DEFAULT_PORTS[clash]})`);
        }
    }
    if (members) {
        const membersKey = c.hosts ? "hosts" : c.memberPool ? "memberPool" : "members";
        for (const p of membershipProblems(members.map((m) => m.name), c.replace ?? [])) {
            add(p.key === "members" ? [membersKey] : p.index === undefined ? ["replace"] : ["replace", p.index], p.message);
        }
        if (mode === "proxmox" && has("ssh") && !c.ssh!.insecureIgnoreHostKeys) {
            // Members with an adopted key (members[].hostKey) need no generated one.
            const used = new Set(members.filter((m) => m.hostKey === undefined).map((m) => m.hypervisor));
            hypervisors.forEach((h, i) => {
                if (h.datastores.snippets !== undefined || !used.has(h.name)) return;
                add(
                    ["hypervisors", i, "datastores", "snippets"],
                    `is required on ${h.name}, which hosts members: only a cloud-init snippet can install the SSH host key the program generates for each VM, which every remote step pins. Enable the Snippets content type on a datastore of ${h.name} and name it here (VMs created before this check: give their keys as ${PROJECT}:members[].hostKey), or set ${PROJECT}:ssh.insecureIgnoreHostKeys: true to accept any host key (not recommended)`,
                );
            });
        }
        if (c.restore && (c.replace ?? []).length > 0) {
            add(["restore"], "cannot run together with etcd-ha:replace: a restore rebuilds every member; remove replace (or finish the replacement first)");
        }
    }
    if (issues.length > 0 || !members || !etcd || !mode) {
        if (issues.length === 0) issues.push({ path: keyPath([]), message: "could not be resolved (no member list): this is a bug, please report it with the stack file" });
        return { ok: false, issues };
    }
    const proxmoxCfg = mode === "proxmox" ? c.proxmox! : undefined;
    const netCidr = network ? [network.cidr] : [];
    const proxmoxResolved: ResolvedProxmox | undefined = proxmoxCfg
        ? {
              ...proxmoxCfg,
              haEnabled: proxmoxCfg.ha.enabled ?? proxmoxCfg.clustered,
              image: { url: proxmoxCfg.image.url, sha256: proxmoxCfg.image.sha256!, fileName: proxmoxCfg.image.fileName ?? imageFileName(proxmoxCfg.image.url) },
              firewall: {
                  enabled: proxmoxCfg.firewall.enabled,
                  adminCidrs: proxmoxCfg.firewall.adminCidrs ?? netCidr,
                  clientCidrs: proxmoxCfg.firewall.clientCidrs ?? netCidr,
                  metricsCidrs: proxmoxCfg.firewall.metricsCidrs ?? netCidr,
                  extraRules: (proxmoxCfg.firewall.extraRules ?? (topology === "stacked" ? STACKED_EXTRA_RULES : [])).map((r) => ({ ...r, sources: r.sources ?? netCidr })),
              },
          }
        : undefined;
    const plan = planTopology(
        members.map((m) => ({ name: m.name, address: m.address, hypervisor: m.hypervisor })),
        etcd.ports,
    );
    return {
        ok: true,
        config: {
            clusterName: c.clusterName!,
            topology,
            mode,
            proxmox: proxmoxResolved,
            hypervisors: mode === "proxmox" ? hypervisors : [],
            network,
            members,
            etcd,
            ssh: c.ssh!,
            replace: c.replace ?? [],
            snapshots: c.snapshots!,
            ...(c.restore ? { restore: c.restore } : {}),
            plan,
            warnings: [...plan.warnings, ...infraWarnings(mode, hypervisors, members)],
        },
    };
}

/** Proxmox layout warnings: hypervisors hosting members without a snippets datastore. */
function infraWarnings(mode: "proxmox" | "hosts", hypervisors: readonly HypervisorConfig[], members: readonly ResolvedMember[]): PlanWarning[] {
    if (mode !== "proxmox") return [];
    const used = new Set(members.map((m) => m.hypervisor));
    const bare = hypervisors.filter((h) => used.has(h.name) && h.datastores.snippets === undefined).map((h) => h.name);
    if (bare.length === 0) return [];
    return [
        {
            code: "cloud-init-fallback",
            message:
                `no snippets datastore on ${bare.join(", ")} (hypervisors[].datastores.snippets): members there get Proxmox's built-in cloud-init ` +
                `user account (admin user and key only; no generated SSH host key, so only members[].hostKey pins their keys; no qemu-guest-agent, so the VM agent is left off; /etc/hosts comes from the readiness step); ` +
                `enable the Snippets content type on a datastore and set it for the full cloud-config`,
        },
    ];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Reads and validates a stack's config from its fully-qualified entries (`etcd-ha:topology` → value), as
 * `pulumi.runtime.allConfig()` returns them. Entries of other namespaces are ignored; secret keys are only
 * checked for presence. Throws `ConfigValidationError` with every issue when invalid.
 */
export function loadStackConfig(allConfig: Readonly<Record<string, string>>): ResolvedConfig {
    const ns = `${PROJECT}:`;
    const entries: Record<string, string> = {};
    const secrets = new Set<string>();
    for (const [k, v] of Object.entries(allConfig)) {
        if (!k.startsWith(ns)) continue;
        const key = k.slice(ns.length);
        if (key in SECRET_KEYS) {
            if (v !== undefined && v !== "") secrets.add(key);
            continue;
        }
        entries[key] = v;
    }
    const { raw, issues, undecodable } = decodeRawConfig(entries);
    const result = validateStackConfig(raw, secrets, undecodable);
    if (!result.ok || issues.length > 0) {
        throw new ConfigValidationError([...issues, ...(result.ok ? [] : result.issues)]);
    }
    return result.config;
}

/** Secret keys (unqualified) that a resolved config needs at deploy time. */
export function requiredSecrets(cfg: ResolvedConfig): SecretKey[] {
    const out: SecretKey[] = ["sshPrivateKey"];
    if (cfg.mode === "proxmox") {
        out.push("proxmoxApiToken");
        if (!cfg.proxmox?.ssh.agent) out.push("proxmoxSshPrivateKey");
    }
    if (cfg.snapshots.s3 !== undefined) out.push("s3AccessKeyId", "s3SecretAccessKey");
    return out;
}
