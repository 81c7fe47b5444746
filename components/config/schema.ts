/**
 * The stack configuration schema: every `etcd-ha:*` key, its type, default and per-field rules, as one
 * zod schema. Cross-field rules (duplicates, CIDR membership, mode exclusions, …) live in `validate.ts`.
 * Pure: no Pulumi imports.
 */
import { z } from "zod";
import { isCidr4, isIPv4, isNetworkCidr4, parseRange } from "../net/ip";

/**
 * An OpenSSH public host key line (`ssh-ed25519 AAAA… [comment]`): ed25519 or ECDSA. Not RSA: a pinned key
 * narrows the command provider's host-key algorithms to the key's type, and for RSA that is the SHA-1
 * `ssh-rsa`, which current OpenSSH servers no longer offer. Every Ubuntu 24.04 host has an ed25519 key.
 */
export const HOST_KEY_LINE = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) AAAA[A-Za-z0-9+/]+={0,3}( [^\n]*)?\s*$/;

/** Pulumi project name, which is also the config namespace. */
export const PROJECT = "etcd-ha";

/** DNS label (RFC 1123): etcd member names, VM names, host names, the cluster name. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Proxmox node names. */
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Linux bridge names as Proxmox/bpg accept them: a letter, then letters, digits or `_`, at most 10. */
export const BRIDGE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,9}$/;
/** DNS domain (search domain): labels joined by dots. */
const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * The QEMU CPU types the Proxmox provider accepts for a VM's `cpu.type` (its CPUTypeValidator, bpg/proxmox
 * v0.111.1 in plugin 8.3.0), case-sensitive; anything else is refused in `pulumi preview`. `custom-<name>` names
 * a custom CPU model defined on the cluster. See docs/proxmox-provider.md.
 */
export const PROXMOX_CPU_TYPES: readonly string[] = [
    "486", "Broadwell", "Broadwell-IBRS", "Broadwell-noTSX", "Broadwell-noTSX-IBRS", "Cascadelake-Server", "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v2", "Cascadelake-Server-v4", "Cascadelake-Server-v5", "Conroe", "Cooperlake", "Cooperlake-v2", "EPYC", "EPYC-Genoa",
    "EPYC-IBPB", "EPYC-Milan", "EPYC-Rome", "EPYC-Rome-v2", "EPYC-Rome-v3", "EPYC-Rome-v4", "EPYC-v3", "EPYC-v4", "Haswell", "Haswell-IBRS",
    "Haswell-noTSX", "Haswell-noTSX-IBRS", "Icelake-Client", "Icelake-Client-noTSX", "Icelake-Server", "Icelake-Server-noTSX", "Icelake-Server-v3",
    "Icelake-Server-v4", "Icelake-Server-v5", "Icelake-Server-v6", "IvyBridge", "IvyBridge-IBRS", "KnightsMill", "Nehalem", "Nehalem-IBRS",
    "Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5", "Penryn", "SandyBridge", "SandyBridge-IBRS", "SapphireRapids",
    "Skylake-Client", "Skylake-Client-IBRS", "Skylake-Client-noTSX-IBRS", "Skylake-Client-v4", "Skylake-Server", "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS", "Skylake-Server-v4", "Skylake-Server-v5", "Westmere", "Westmere-IBRS", "athlon", "core2duo", "coreduo", "host",
    "kvm32", "kvm64", "max", "pentium", "pentium2", "pentium3", "phenom", "qemu32", "qemu64", "x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4",
];

/** Why `cpuType` is refused, or undefined when the provider accepts it (a listed type, or `custom-<name>`). */
export function cpuTypeProblem(v: string): string | undefined {
    if (PROXMOX_CPU_TYPES.includes(v) || /^custom-[A-Za-z0-9_.-]+$/.test(v)) return undefined;
    const near = PROXMOX_CPU_TYPES.find((t) => t.toLowerCase() === v.toLowerCase());
    return (
        "must be a CPU type the Proxmox provider accepts, such as x86-64-v2-AES, x86-64-v3, host or EPYC-Milan (case-sensitive; " +
        `the whole list is in docs/proxmox-provider.md), or custom-<name> for a custom CPU model${near ? `: did you mean ${near}?` : ""}`
    );
}

/**
 * A network interface name as the LinuxBridge component accepts a bridge port (`eno2`, `bond0`, `eno2.10`): a
 * letter or digit, then letters, digits, '_', '.', ':' or '-', at most 15 characters (the kernel's IFNAMSIZ).
 */
export const IFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/;

/**
 * True when no octet of the IPv4 address (or CIDR) at the start of `s` has a leading zero (`10.103.0.01`). Such
 * addresses pass `ip-address` but Go's parsers (the Proxmox provider's IP and CIDR types) refuse them, and
 * C's inet_aton reads `010` as octal 8.
 */
export function noLeadingZero(s: string): boolean {
    return !/(^|\.)0\d/.test(s.split("/")[0]);
}
const LEADING_ZERO_MESSAGE = "must be written without leading zeros (10.103.0.1, not 10.103.0.01): the Proxmox provider refuses them and some tools read them as octal";

const dnsLabel = z
    .string()
    .regex(DNS_LABEL, "must be a DNS label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit");
const ipv4 = z.string().refine(isIPv4, "must be an IPv4 address such as 10.103.0.101").refine(noLeadingZero, LEADING_ZERO_MESSAGE);
const networkCidr = z
    .string()
    .refine(isCidr4, "must be an IPv4 CIDR such as 10.103.0.0/24")
    .refine((s) => !isCidr4(s) || !noLeadingZero(s) || isNetworkCidr4(s), "must be a network address with the host bits zero (e.g. 10.103.0.0/24, not 10.103.0.5/24)")
    .refine(noLeadingZero, LEADING_ZERO_MESSAGE);
const hostCidr = z.string().refine(isCidr4, "must be an IPv4 address with a prefix length, such as 10.103.0.1/24").refine(noLeadingZero, LEADING_ZERO_MESSAGE);
const source = z
    .string()
    .refine((s) => isCidr4(s) || isIPv4(s), "must be an IPv4 address or CIDR such as 10.103.0.0/24")
    .refine(noLeadingZero, LEADING_ZERO_MESSAGE);
const port = z.number().int().min(1).max(65535);
/** A firewall rule's `N` or `LOW:HIGH` (already matched as digits): every port 1-65535, LOW ≤ HIGH. Digits that fail the pattern pass here (the pattern reports them). */
function portRangeOk(v: string): boolean {
    if (!/^\d{1,5}(:\d{1,5})?$/.test(v)) return true;
    const [lo, hi = lo] = v.split(":").map(Number);
    return lo >= 1 && hi <= 65535 && lo <= hi;
}
/**
 * A Proxmox storage ID as PVE accepts it (`pve-storage-id`: a letter first, then letters, digits, '-', '_' or
 * '.', ending in a letter or digit), e.g. `local`, `local-lvm`, `ceph_vm.1`.
 */
export const STORAGE_ID = /^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$/;
const storageId = z.string().regex(STORAGE_ID, "must be a Proxmox storage ID such as local or local-lvm: a letter first, then letters, digits, '-', '_' or '.', ending in a letter or digit");
/**
 * A Linux user name as `useradd` accepts it by default (Debian and Ubuntu): a lower-case letter or '_' first,
 * then lower-case letters, digits, '_' or '-', at most 32 characters. It is put into commands (sudo, chown).
 */
const linuxUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Linux user name such as ubuntu: a lower-case letter or '_' first, then lower-case letters, digits, '_' or '-', at most 32");
const httpsUrl = z.string().regex(/^https:\/\/[^\s/]+(:\d+)?\/?$/, "must be an https URL such as https://pve1.kloud.lan:8006/");

/** Default cloud image: Ubuntu 24.04 (noble), the current release. Pin a dated `release-YYYYMMDD` URL in production. */
export const DEFAULT_IMAGE_URL = "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img";

/** VM size. */
export const SizeSchema = z.strictObject({
    /** vCPUs. */
    cores: z.number().int().min(1).max(128).optional(),
    /** Memory in MiB (etcd needs at least the backend quota in RAM). */
    memoryMiB: z.number().int().min(1024).max(1048576).optional(),
    /** System disk in GiB (holds the etcd data dir). */
    diskGiB: z.number().int().min(10).max(65536).optional(),
});

export const ProxmoxSchema = z.strictObject({
    /** API endpoint of the PVE cluster, e.g. `https://pve1.kloud.lan:8006/` (required when `clustered`). */
    endpoint: httpsUrl.optional(),
    /** Accept a self-signed API certificate. Default false. */
    insecure: z.boolean().default(false),
    /** True when the hypervisors form one PVE cluster (one provider); false for standalone hosts (one provider each). */
    clustered: z.boolean().default(true),
    /** SSH access to the hypervisors, used by the provider for snippet uploads. */
    ssh: z
        .strictObject({
            /** SSH user on the hypervisors (root, or a user with passwordless sudo). Default root. */
            username: linuxUser.default("root"),
            /** Use the operator's ssh-agent instead of `etcd-ha:proxmoxSshPrivateKey`. Default false. */
            agent: z.boolean().default(false),
        })
        .default({ username: "root", agent: false }),
    /** First VM id for members without an explicit `vmId`: vmId = vmIdBase + (address − network address). Default 7000. */
    vmIdBase: z.number().int().min(100).max(999000000).default(7000),
    /** HA anti-affinity for a PVE cluster (ignored for standalone hosts). */
    ha: z
        .strictObject({
            /** Register the VMs as HA resources and keep them on different nodes. Default true when clustered. */
            enabled: z.boolean().optional(),
            /** Major PVE version: 9 uses HA rules, 8 uses HA groups. Default 9. */
            pveMajor: z.union([z.literal(8), z.literal(9)]).default(9),
        })
        .default({ pveMajor: 9 }),
    /** The cloud image every VM's disk is imported from, downloaded once per hypervisor. */
    image: z
        .strictObject({
            /** http(s) URL of an Ubuntu 24.04 (noble) cloud image (qcow2 content, any extension). */
            url: z.string().regex(/^https?:\/\/[^\s'"]+$/, "must be an http(s) URL such as https://cloud-images.ubuntu.com/releases/noble/release-20250610/ubuntu-24.04-server-cloudimg-amd64.img").default(DEFAULT_IMAGE_URL),
            /** sha256 of that file, from the SHA256SUMS next to it (required: the download is verified). */
            sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (the image's line in SHA256SUMS)").optional(),
            /** File name on the images datastore; must end in .qcow2 (PVE's import content type). Default: the URL's base name as .qcow2. */
            fileName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\.qcow2$/, "must be a file name ending in .qcow2, such as noble-server-cloudimg-amd64.qcow2").optional(),
        })
        .default({ url: DEFAULT_IMAGE_URL }),
    /**
     * QEMU CPU type of the VMs. Default `x86-64-v2-AES` (migratable between hosts); `host` for the host CPU. One of
     * the types the Proxmox provider accepts (`PROXMOX_CPU_TYPES`) or `custom-<name>`.
     */
    cpuType: z
        .string()
        .superRefine((v, ctx) => {
            const problem = cpuTypeProblem(v);
            if (problem) ctx.addIssue({ code: "custom", message: problem, input: v });
        })
        .default("x86-64-v2-AES"),
    /** Seconds the readiness check waits for SSH and cloud-init on a new VM. Default 900. */
    readyTimeoutSeconds: z.number().int().min(30).max(7200).default(900),
    /** Per-VM Proxmox firewall. */
    firewall: z
        .strictObject({
            /** Manage each VM's firewall (options, rules, NIC flag) with inbound default DROP. Default true. */
            enabled: z.boolean().default(true),
            /** Where SSH (22) is allowed from; must include the machine running Pulumi. Default: network.cidr. */
            adminCidrs: z.array(source).optional(),
            /** Where etcd clients (2379) may connect from (kube-apiservers, admins). Default: network.cidr. */
            clientCidrs: z.array(source).optional(),
            /** Where metrics/health (2381) may be scraped from. Default: network.cidr. */
            metricsCidrs: z.array(source).optional(),
            /** More inbound rules (e.g. a CNI's ports). Default: none for external; 6443 and 10250 from network.cidr for stacked. */
            extraRules: z
                .array(
                    z.strictObject({
                        /** Port or range, e.g. `6443` or `30000:32767`. */
                        port: z
                            .string()
                            .regex(/^\d{1,5}(:\d{1,5})?$/, "must be a port such as 6443 or a range such as 30000:32767")
                            .refine((v) => portRangeOk(v), "must be ports 1-65535, a range low:high with low at most high, such as 30000:32767"),
                        /** `tcp` or `udp`. Default tcp. */
                        proto: z.enum(["tcp", "udp"]).default("tcp"),
                        /** Allowed sources (CIDRs). Default: network.cidr. */
                        sources: z.array(source).optional(),
                        /** Comment shown in the Proxmox UI. */
                        comment: z.string().max(100).optional(),
                    }),
                )
                .optional(),
        })
        .default({ enabled: true }),
});

export const BridgeSchema = z.strictObject({
    /** Bridge name, e.g. `vmbr10`: a letter, then letters, digits or `_`, at most 10 characters. */
    name: z.string().regex(BRIDGE_NAME, "must be a Linux bridge name: a letter, then letters, digits or '_', at most 10 characters (e.g. vmbr10)"),
    /** The bridge already exists on the host: do not create or manage it. Default false. */
    exists: z.boolean().default(false),
    /** Host address on the bridge in CIDR form, when the hypervisor routes the member network. */
    address: hostCidr.optional(),
    /** Gateway of the hypervisor on this bridge. */
    gateway: ipv4.optional(),
    /** Physical NICs, bonds or VLAN interfaces enslaved to the bridge (needed for cross-host traffic): interface names. */
    ports: z
        .array(z.string().regex(IFACE_NAME, "must be one network interface name such as eno2, bond0 or eno2.10: a letter or digit, then letters, digits, '_', '.', ':' or '-', at most 15 characters (list several ports as several entries)"))
        .default([]),
    /** VLAN-aware bridge. Default false. */
    vlanAware: z.boolean().default(false),
    /** VLAN tag for the members' NICs (needs `vlanAware`). */
    vlanId: z.number().int().min(1).max(4094).optional(),
    /** MTU. */
    mtu: z.number().int().min(576).max(65520).optional(),
    /** Comment shown in the Proxmox UI. */
    comment: z.string().optional(),
});

export const HypervisorSchema = z.strictObject({
    /** Proxmox node name, e.g. `pve1`. */
    name: z.string().regex(NODE_NAME, "must be a Proxmox node name: letters, digits and '-' (e.g. pve1)"),
    /** API endpoint of this host (required for standalone hosts, ignored when clustered). */
    endpoint: httpsUrl.optional(),
    /** Address the provider uses to SSH into this node (snippet uploads); default: what the API reports. */
    sshAddress: z.string().min(1).optional(),
    /** The Linux bridge the members' NICs attach to. */
    bridge: BridgeSchema,
    /** Datastores on this node. */
    datastores: z
        .strictObject({
            /** VM disks and the cloud-init drive. Default `local-lvm`. */
            disk: storageId.default("local-lvm"),
            /** Cloud images (`import` content type must be enabled). Default `local`. */
            images: storageId.default("local"),
            /**
             * Cloud-init snippets (`snippets` content type). Required on nodes that host members: the snippet carries the
             * VM's generated SSH host key. Unset only with `ssh.insecureIgnoreHostKeys` (the built-in user account, host keys unchecked).
             */
            snippets: storageId.optional(),
        })
        .default({ disk: "local-lvm", images: "local" }),
});

export const NetworkSchema = z.strictObject({
    /** The member network, e.g. `10.103.0.0/24`. */
    cidr: networkCidr,
    /** Default gateway of the members (inside `cidr`). */
    gateway: ipv4.optional(),
    /** DNS resolvers for the VMs. */
    dnsServers: z.array(ipv4).default([]),
    /** Search domain; member FQDNs are `<name>.<searchDomain>`. */
    searchDomain: z
        .string()
        .regex(DOMAIN, "must be a DNS domain such as kloud.lan")
        .optional(),
    /** NTP servers for the VMs (cloud-init `ntp`); empty → the distribution's default pool. */
    ntpServers: z.array(z.string().regex(/^[A-Za-z0-9.:-]+$/, "must be a host name or an IP address")).default([]),
});

export const MemberSchema = z.strictObject({
    /** Member name: VM name, hostname and etcd `--name`. */
    name: dnsLabel,
    /** Hypervisor to place it on; omitted → spread automatically. */
    hypervisor: z.string().min(1).optional(),
    /** Static IPv4 address inside `etcd-ha:network.cidr`. */
    address: ipv4,
    /** Proxmox VM id; omitted → `proxmox.vmIdBase` + address offset. */
    vmId: z.number().int().min(100).max(999999999).optional(),
    /** Size overrides for this member. */
    size: SizeSchema.optional(),
    /**
     * The VM's current public SSH host key, for a VM created before etcd-ha pinned host keys (its cloud-init ran
     * without one): pinned instead of a generated key. Omit for new VMs: they get a generated key.
     */
    hostKey: z.string().regex(HOST_KEY_LINE, "must be the VM's ed25519 (or ECDSA) public host key, one line such as 'ssh-ed25519 AAAA… root@etcd1' (cat /etc/ssh/ssh_host_ed25519_key.pub on the VM)").optional(),
});

export const MemberPoolSchema = z.strictObject({
    /** Number of members. */
    count: z.number().int().min(0).max(99),
    /** Where addresses come from: `10.103.0.101-10.103.0.120` (inclusive) or a CIDR. */
    addressRange: z.string().refine((s) => parseRange(s) !== undefined, "must be a range like 10.103.0.101-10.103.0.120 or a CIDR like 10.103.0.96/27"),
    /** Member names are `<namePrefix><n>` from 1. Default `etcd` (external) or `cp` (stacked). */
    namePrefix: z
        .string()
        .regex(/^[a-z]([a-z0-9-]{0,55}[a-z0-9])?$/, "must start with a letter and hold lower-case letters, digits and '-'")
        .optional(),
    /** Restrict automatic spreading to these hypervisors (default: all). */
    hypervisors: z.array(z.string().min(1)).optional(),
    /** Size for every pool member. */
    size: SizeSchema.optional(),
});

export const HostSchema = z.strictObject({
    /** Host name: etcd `--name` and certificate CN. */
    name: dnsLabel,
    /** IPv4 address etcd listens on and SSH connects to. */
    address: ipv4,
    /** SSH port. Default 22. */
    port: port.default(22),
    /** SSH user; default `etcd-ha:ssh.user`. */
    user: linuxUser.optional(),
    /** FQDN for certificate SANs; default `<name>.<network.searchDomain>` when a search domain is set. */
    fqdn: z.string().regex(DOMAIN, "must be a DNS name such as etcd1.kloud.lan").optional(),
    /** Failure domain (physical machine) of this host, for hypervisor fault tolerance; optional. */
    hypervisor: z.string().min(1).optional(),
    /**
     * The host's public SSH host key, one line (`ssh-ed25519 AAAA…`, as in /etc/ssh/ssh_host_ed25519_key.pub
     * on the host): every remote step accepts only this key. Required unless `etcd-ha:ssh.insecureIgnoreHostKeys`.
     */
    hostKey: z.string().regex(HOST_KEY_LINE, "must be the host's ed25519 (or ECDSA) public host key, one line such as 'ssh-ed25519 AAAA… root@etcd1' (cat /etc/ssh/ssh_host_ed25519_key.pub on the host)").optional(),
});

/** A certificate SAN: a DNS name (wildcards allowed) or an IP literal. */
const SAN = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^[0-9a-fA-F:.]+$/;
const SAN_MESSAGE = "must be a DNS name or an IP address";
/**
 * An `etcd.pki.renew` token: 1 to 64 letters, digits, '.', '_', ':' or '-' (a date such as 2026-12-07).
 * Shared with the components' own validation.
 */
export const PKI_RENEW_TOKEN = /^[A-Za-z0-9._:-]{1,64}$/;
export const PKI_RENEW_MESSAGE = "must be 1 to 64 letters, digits, '.', '_', ':' or '-', such as the date 2026-12-07";
/** One PEM certificate block. */
const PEM_CERT = /^\s*-{5}BEGIN CERTIFICATE-{5}\r?\n[A-Za-z0-9+/=\r\n]+-{5}END CERTIFICATE-{5}\s*$/;

export const EtcdSchema = z.strictObject({
    /** etcd release, e.g. `3.5.21`. */
    version: z
        .string()
        .regex(/^3\.(4|5|6)\.\d{1,3}$/, "must be an etcd 3.4, 3.5 or 3.6 release such as 3.5.21")
        .default("3.5.21"),
    /** Listening ports. */
    ports: z
        .strictObject({
            client: port.default(2379),
            peer: port.default(2380),
            metrics: port.default(2381),
        })
        .default({ client: 2379, peer: 2380, metrics: 2381 }),
    /** Raft heartbeat in ms (about the round-trip time between members). Default 100. */
    heartbeatIntervalMs: z.number().int().min(10).max(10000).default(100),
    /** Election timeout in ms (at least 5× the heartbeat; etcd's maximum is 50000). Default 1000. */
    electionTimeoutMs: z.number().int().min(50).max(50000).default(1000),
    /** Backend quota in bytes. Default 2 GiB; etcd warns above 8 GiB. */
    quotaBackendBytes: z
        .number()
        .int()
        .min(64 * 1024 * 1024)
        .max(8 * 1024 * 1024 * 1024, "must be at most 8589934592 (8 GiB), the largest quota etcd supports well")
        .default(2 * 1024 * 1024 * 1024),
    /** History compaction. */
    autoCompaction: z
        .strictObject({
            mode: z.enum(["periodic", "revision"]).default("periodic"),
            /** `8h` for periodic, a revision count such as `10000` for revision. */
            retention: z.string().regex(/^\d+(h|m|s)?$/, "must be a duration such as 8h or a revision count such as 10000").default("8h"),
        })
        .default({ mode: "periodic", retention: "8h" }),
    /** Raft entries between snapshots. Default 10000. */
    snapshotCount: z.number().int().min(100).max(10000000).default(10000),
    /** WAL/snapshot files kept. Default 5 each. */
    maxSnapshots: z.number().int().min(1).max(100).default(5),
    maxWals: z.number().int().min(1).max(100).default(5),
    /**
     * Also listen on 127.0.0.1 (client and metrics ports) for a co-located kube-apiserver and local tools.
     * Default true. Only hosts that share one network stack (the loopback lab) turn it off.
     */
    listenLocalhost: z.boolean().default(true),
    /** Data directory on the members. Default `/var/lib/etcd`. */
    dataDir: z.string().regex(/^\/[A-Za-z0-9._/-]+$/, "must be an absolute path such as /var/lib/etcd").default("/var/lib/etcd"),
    /** Certificates. */
    pki: z
        .strictObject({
            /** Key algorithm for every key. Default ECDSA (P-256). */
            keyAlgorithm: z.enum(["ECDSA", "RSA"]).default("ECDSA"),
            /** RSA key size when keyAlgorithm is RSA. Default 2048. */
            rsaBits: z.union([z.literal(2048), z.literal(3072), z.literal(4096)]).default(2048),
            /** CA validity in hours. Default 87600 (10 years). */
            caValidityHours: z.number().int().min(24).default(87600),
            /** Leaf certificate validity in hours. Default 8760 (1 year). */
            certValidityHours: z.number().int().min(24).default(8760),
            /** Re-issue leaf certificates this many hours before they expire. Default 720 (30 days). */
            earlyRenewalHours: z.number().int().min(0).default(720),
            /**
             * Re-issue every leaf certificate now (as `kubeadm certs renew`): a token such as a date; each change
             * to another value replaces every leaf (same keys, same CA, new serial and validity) and rolls the
             * members. A value where there was none (the first, or the first after removing it) only arms it:
             * nothing is re-issued; removing it re-issues nothing. Default unset.
             */
            renew: z.string().regex(PKI_RENEW_TOKEN, PKI_RENEW_MESSAGE).optional(),
            /** Extra SANs (DNS names or IPs) on every server certificate, e.g. a load-balancer name. */
            serverCertSans: z.array(z.string().regex(SAN, SAN_MESSAGE)).default([]),
            /** Extra SANs on every peer certificate. */
            peerCertSans: z.array(z.string().regex(SAN, SAN_MESSAGE)).default([]),
            /**
             * More CA certificates (PEM, one per entry) that members and clients trust besides the signing CA:
             * the "trust both" phase of a CA rotation. They go into every member's ca.crt and the `caCertPem`
             * output. Default none.
             */
            trustedCaCerts: z.array(z.string().regex(PEM_CERT, "must be one PEM certificate (the BEGIN/END CERTIFICATE block)")).default([]),
        })
        .default({ keyAlgorithm: "ECDSA", rsaBits: 2048, caValidityHours: 87600, certValidityHours: 8760, earlyRenewalHours: 720, serverCertSans: [], peerCertSans: [], trustedCaCerts: [] }),
    /** How the binaries reach the members. */
    install: z
        .strictObject({
            /** `download` the pinned release (sha256-verified) or `push` a local tarball (air-gapped). Default download. */
            method: z.enum(["download", "push"]).default("download"),
            /** CPU architecture of the members. Default amd64. */
            arch: z.enum(["amd64", "arm64"]).default("amd64"),
            /** With `push`: path of the release tarball on the operator's machine. */
            tarball: z.string().min(1).optional(),
            /** sha256 of the release tarball. Default: the pinned value in the release table for the version and arch. */
            sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits").optional(),
            /** With `download`: a mirror with the release layout (`<baseUrl>/v<version>/etcd-v<version>-linux-<arch>.tar.gz`). */
            baseUrl: z.string().regex(/^https?:\/\/[^\s'"]+$/, "must be an http(s) URL such as https://mirror.example/etcd").optional(),
        })
        .default({ method: "download", arch: "amd64" }),
});

/** A systemd calendar expression (`daily`, `*-*-* 00/6:00:00`): the characters calendar expressions use. */
const onCalendar = z
    .string()
    .max(256)
    .regex(/^[A-Za-z0-9*][A-Za-z0-9 ,:*/.~+-]*$/, "must be a systemd OnCalendar expression such as daily or *-*-* 00/6:00:00")
    .refine((s) => s === s.trim(), "must not start or end with a space");

/** Default snapshot schedule: every 6 hours (00:00, 06:00, 12:00, 18:00 host time), plus a random delay. */
export const DEFAULT_SNAPSHOT_SCHEDULE = "*-*-* 00/6:00:00";

/** An S3 store's endpoint: `https://host[:port]`, no path (path-style requests; https only). */
export const S3_ENDPOINT = /^https:\/\/([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$/;
/** An S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', a letter or digit at each end. */
export const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** An object key prefix: empty, or path segments of letters, digits, '.', '_' and '-', ending in '/'. */
export const S3_PREFIX = /^([A-Za-z0-9._-]+\/)*$/;

/**
 * Off-host copies of every scheduled and on-demand snapshot in an S3-compatible store. The keys are the secrets
 * `etcd-ha:s3AccessKeyId` and `etcd-ha:s3SecretAccessKey`.
 */
export const S3Schema = z.strictObject({
    /** `https://host[:port]` of the store (path-style requests, so any S3-compatible store; https only). */
    endpoint: z.string().regex(S3_ENDPOINT, "must be https://host[:port] without a path, such as https://s3.kloud.lan:9000 (only https: the keys sign every request)"),
    /** The bucket; it must exist. */
    bucket: z
        .string()
        .regex(S3_BUCKET, "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'")
        .refine((b) => !b.includes(".."), "must not contain '..'"),
    /** Key prefix before `<cluster>/<snapshot file>`: empty or ending in '/'. Default `etcd/`. */
    prefix: z.string().max(200).regex(S3_PREFIX, "must be empty or path segments of letters, digits, '.', '_' and '-' ending in '/', such as etcd/").default("etcd/"),
    /** The region requests are signed for. Default `us-east-1` (what most S3-compatible stores expect). */
    region: z.string().regex(/^[a-z0-9-]{1,32}$/, "must be a region name such as us-east-1").default("us-east-1"),
    /** PEM CA bundle for the store's certificate. Default: the members' system CAs. */
    caPem: z
        .string()
        .max(65536)
        .refine((p) => p.includes("-----BEGIN CERTIFICATE-----") && p.includes("-----END CERTIFICATE-----"), "must be PEM certificates (-----BEGIN CERTIFICATE-----)")
        .optional(),
    /** Objects kept per member in the bucket, newest first. Default 120 (30 days at the default schedule). */
    retainCount: z.number().int().min(1).max(10000).default(120),
    /** Objects older than this are deleted (never a member's newest). Default 30. */
    retainDays: z.number().int().min(1).max(3650).default(30),
    /** Tries per upload; the wait between them doubles from backoffSeconds. Default 4. */
    attempts: z.number().int().min(1).max(10).default(4),
    /** The first wait between tries, seconds. Default 5. */
    backoffSeconds: z.number().int().min(1).max(600).default(5),
    /** Bound on one request (an upload or a read-back), seconds. Default 900. */
    requestTimeoutSeconds: z.number().int().min(1).max(86400).default(900),
    /** Bound on one run's copies; what is left goes in the next run. Default 3600. */
    budgetSeconds: z.number().int().min(1).max(86400).default(3600),
});

export const SnapshotsSchema = z.strictObject({
    /** Install and enable the snapshot timer on every member. Default true. */
    enabled: z.boolean().default(true),
    /** When to snapshot (systemd `OnCalendar=`). Default every 6 hours. */
    schedule: onCalendar.default(DEFAULT_SNAPSHOT_SCHEDULE),
    /** Random delay (seconds) added to each run, so members do not snapshot at the same moment. Default 900. */
    randomizedDelaySec: z.number().int().min(0).max(86400).default(900),
    /** Snapshot directory on the members (not under /tmp, /var/tmp, /usr, /boot, /efi or /etc). Default `/var/backups/etcd`. */
    dir: z
        .string()
        .regex(/^(\/[A-Za-z0-9_][A-Za-z0-9._-]*)+$/, "must be an absolute path such as /var/backups/etcd (letters, digits and . _ -)")
        .refine((d) => !["/tmp", "/var/tmp", "/usr", "/boot", "/efi", "/etc"].some((h) => d === h || d.startsWith(`${h}/`)), "must not be under /tmp, /var/tmp, /usr, /boot, /efi or /etc, which the snapshot service's sandbox hides or makes read-only")
        .default("/var/backups/etcd"),
    /** Snapshots kept per member, newest first (pre-upgrade snapshots are counted separately). Default 28 (a week at the default schedule). */
    retain: z.number().int().min(1).max(1000).default(28),
    /**
     * A shell command run as root after each verified snapshot, with the snapshot's path as "$1" and its
     * `.sha256` file as "$2" (e.g. `rclone copy "$1" remote:etcd/ && rclone copy "$2" remote:etcd/`). It is
     * stored in the stack and on the members (0700 root): keep credentials in files it reads.
     */
    offHostCommand: z.string().min(1).max(8192).optional(),
    /** Bound on the off-host command, seconds. Default 3600. */
    offHostTimeoutSeconds: z.number().int().min(1).max(86400).default(3600),
    /** Off-host copies in an S3-compatible store, read back before they count (see S3Schema). Default: none. */
    s3: S3Schema.optional(),
});

/** `s3://bucket/key` split (undefined when it is not one: a bucket name, then a key of S3 client's form). */
export function parseS3Url(v: string): { bucket: string; key: string } | undefined {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(v);
    if (!m || !S3_BUCKET.test(m[1]) || m[1].includes("..") || !/^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/.test(m[2]) || m[2].includes("//")) return undefined;
    return { bucket: m[1], key: m[2] };
}

export const RestoreSchema = z.strictObject({
    /**
     * The snapshot to restore: a path on the machine running Pulumi (pushed to every member), an http(s) URL
     * every member downloads, or `s3://bucket/key` in the store of `snapshots.s3` (every member downloads it
     * with the store's keys).
     */
    fromSnapshot: z
        .string()
        .min(1)
        .regex(/^[^\s'"`$\\]+$/, "must be a file path or URL without spaces, quotes, '$' or '\\'")
        .refine(
            (v) => !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v) || /^https?:\/\/[^/]+\/./.test(v) || parseS3Url(v) !== undefined,
            "must be a path on this machine, an http(s):// URL of the file, or s3://bucket/key (letters, digits, '.', '_', '-' and single '/' in the key) in the store of snapshots.s3; other schemes (ftp://, file://) are not fetched: download the snapshot and give its path",
        ),
    /** The snapshot file's sha256 (`sha256sum snapshot.db`). Required: a restore refuses any other file. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the snapshot's sha256: 64 lower-case hex digits (sha256sum snapshot.db)"),
    /**
     * Names this restore (the new cluster token is `<clusterName>-restore-<id>`). Default: the first 12
     * digits of sha256. Set a new id to restore the same snapshot again.
     */
    id: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, "must be 1-32 lower-case letters, digits and '-'").optional(),
});

export const SshSchema = z.strictObject({
    /** Admin user on the members (created by cloud-init on Proxmox VMs). Default `ubuntu`. */
    user: linuxUser.default("ubuntu"),
    /** Public key installed for that user (required on Proxmox). */
    publicKey: z
        .string()
        .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/, "must be an OpenSSH public key line such as 'ssh-ed25519 AAAA… admin@host'")
        .optional(),
    /**
     * Accept any SSH host key from members without a pinned one (`hosts[].hostKey`; Proxmox VMs on nodes without a
     * snippets datastore). Default false. Every run warns: whatever answers at a member's address gets the private keys.
     */
    insecureIgnoreHostKeys: z.boolean().default(false),
});

/** Every plain (non-secret) stack config key, as one schema. */
export const StackConfigSchema = z.strictObject({
    /** Cluster name: tags, the initial-cluster token prefix, the component's logical name. Default `etcd`. */
    clusterName: dnsLabel.default("etcd"),
    /** `external` (dedicated etcd VMs) or `stacked` (etcd on the control-plane VMs). Default external. */
    topology: z.enum(["external", "stacked"]).default("external"),
    proxmox: ProxmoxSchema.optional(),
    hypervisors: z.array(HypervisorSchema).optional(),
    network: NetworkSchema.optional(),
    members: z.array(MemberSchema).optional(),
    memberPool: MemberPoolSchema.optional(),
    hosts: z.array(HostSchema).optional(),
    /** Default size of every member VM (topology-specific defaults apply). */
    vmSize: SizeSchema.optional(),
    etcd: EtcdSchema.default(EtcdSchema.parse({})),
    ssh: SshSchema.default({ user: "ubuntu", insecureIgnoreHostKeys: false }),
    /**
     * Day-2: members to replace in the next run (at most one), e.g. `[etcd2]` after its VM or disk was
     * lost: the member is removed from the cluster, its data dir wiped, every step re-run on its host, and
     * it joins again with the same name and address. Remove the entry once the run has succeeded.
     */
    replace: z.array(dnsLabel).default([]),
    /** Day-2: scheduled snapshots on every member (a systemd timer) with retention and an optional off-host copy. */
    snapshots: SnapshotsSchema.default(SnapshotsSchema.parse({})),
    /**
     * Day-2: restore the cluster from a snapshot in the next run: every member is stopped, the snapshot
     * restored on each (a new cluster with a new token), then started. Remove the key once the run succeeded.
     */
    restore: RestoreSchema.optional(),
});

export type StackConfigInput = z.input<typeof StackConfigSchema>;
export type ParsedStackConfig = z.output<typeof StackConfigSchema>;
export type HypervisorConfig = z.output<typeof HypervisorSchema>;
export type MemberConfig = z.output<typeof MemberSchema>;
export type HostConfig = z.output<typeof HostSchema>;
export type EtcdConfig = z.output<typeof EtcdSchema>;
export type SizeConfig = z.output<typeof SizeSchema>;
export type SnapshotsConfig = z.output<typeof SnapshotsSchema>;
export type S3Config = z.output<typeof S3Schema>;
export type RestoreConfig = z.output<typeof RestoreSchema>;

/** Keys whose value is a plain string in the stack file; every other key holds YAML/JSON structure. */
export const STRING_KEYS: ReadonlySet<string> = new Set(["clusterName", "topology"]);

/** Secret keys: set with `pulumi config set --secret`; validated for presence only, never read here. */
export const SECRET_KEYS = {
    /** `user@realm!tokenid=uuid` for the Proxmox API. Required with Proxmox members. */
    proxmoxApiToken: "proxmoxApiToken",
    /** Unencrypted PEM private key for SSH to the hypervisors (snippets). Required with Proxmox members unless `proxmox.ssh.agent`. */
    proxmoxSshPrivateKey: "proxmoxSshPrivateKey",
    /** Unencrypted PEM/OpenSSH private key for SSH to the members. Always required. */
    sshPrivateKey: "sshPrivateKey",
    /** Optional: the certificate (PEM) of an existing etcd CA to adopt, e.g. kubeadm's etcd/ca.crt. Set with etcdCaKey. */
    etcdCaCert: "etcdCaCert",
    /** Optional: that CA's private key (PEM). Set with etcdCaCert. */
    etcdCaKey: "etcdCaKey",
    /** The S3 store's access key ID. Required with `snapshots.s3`. */
    s3AccessKeyId: "s3AccessKeyId",
    /** The S3 store's secret access key. Required with `snapshots.s3`. */
    s3SecretAccessKey: "s3SecretAccessKey",
} as const;
export type SecretKey = keyof typeof SECRET_KEYS;
/** Secret keys that are never required (an adopted CA); the offline plan sets no placeholder for them. */
export const OPTIONAL_SECRET_KEYS: ReadonlySet<SecretKey> = new Set<SecretKey>(["etcdCaCert", "etcdCaKey", "s3AccessKeyId", "s3SecretAccessKey"]);

/** Default VM sizes per topology (external: etcd only; stacked: control plane + etcd). */
export const DEFAULT_SIZES: Record<"external" | "stacked", Required<SizeConfig>> = {
    external: { cores: 2, memoryMiB: 4096, diskGiB: 20 },
    stacked: { cores: 4, memoryMiB: 8192, diskGiB: 40 },
};
