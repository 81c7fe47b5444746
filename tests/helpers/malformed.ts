/**
 * Malformed stack configs, each with the key path and the exact message it must be refused with.
 * Shared by the pure validator test and the program test (which also checks no resource registers).
 */
import { hostsBase, mutate, proxmoxBase, Raw } from "./configs";

export interface Malformed {
    label: string;
    raw: Raw;
    /** Secret keys set (default: all). */
    secrets?: ReadonlySet<string>;
    path: string;
    message: string;
}

const P = proxmoxBase;
const H = hostsBase;
const HOST_SECRETS: ReadonlySet<string> = new Set(["sshPrivateKey"]);

export const MALFORMED: Malformed[] = [
    // --- member counts and modes ---
    { label: "zero members (empty list)", raw: mutate(P(), (c) => (c.members = [])), path: "etcd-ha:members", message: "has no members: list at least one (3 or 5 for HA)" },
    { label: "zero hosts (empty list)", raw: mutate(H(), (c) => (c.hosts = [])), secrets: HOST_SECRETS, path: "etcd-ha:hosts", message: "has no hosts: list at least one (3 or 5 for HA)" },
    {
        label: "zero members (pool count 0)",
        raw: mutate(P(), (c) => {
            delete c.members;
            c.memberPool = { count: 0, addressRange: "10.103.0.101-10.103.0.120" };
        }),
        path: "etcd-ha:memberPool.count",
        message: "is 0: a cluster needs at least one member (3 or 5 for HA)",
    },
    {
        label: "no member source at all",
        raw: mutate(P(), (c) => delete c.members),
        path: "etcd-ha:members",
        message: "no members: set etcd-ha:members (Proxmox VMs), etcd-ha:memberPool (a count and an address range) or etcd-ha:hosts (existing machines)",
    },
    {
        label: "both hosts and Proxmox members",
        raw: mutate(P(), (c) => (c.hosts = H().hosts)),
        path: "etcd-ha:hosts",
        message: "both hosts and Proxmox members (etcd-ha:members) are set: use etcd-ha:hosts for existing machines or Proxmox members for new VMs, not both",
    },
    {
        label: "hosts with a proxmox block",
        raw: mutate(H(), (c) => (c.proxmox = { endpoint: "https://pve1:8006/" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:proxmox",
        message: "is only used with Proxmox members; remove it, or replace etcd-ha:hosts with etcd-ha:members",
    },
    {
        label: "members and memberPool together",
        raw: mutate(P(), (c) => (c.memberPool = { count: 3, addressRange: "10.103.0.110-10.103.0.120" })),
        path: "etcd-ha:memberPool",
        message: "is mutually exclusive with etcd-ha:members: list the members explicitly or give a count and range, not both",
    },
    {
        label: "members is not a list",
        raw: mutate(P(), (c) => (c.members = { name: "etcd1" })),
        path: "etcd-ha:members",
        message: "must be a list (got an object)",
    },
    // --- duplicates ---
    {
        label: "duplicate member names",
        raw: mutate(P(), (c) => (c.members[1].name = "etcd1")),
        path: "etcd-ha:members[1].name",
        message: '"etcd1" is already used by etcd-ha:members[0]: names must be unique',
    },
    {
        label: "duplicate member addresses",
        raw: mutate(P(), (c) => (c.members[2].address = "10.103.0.101")),
        path: "etcd-ha:members[2].address",
        message: "10.103.0.101 is already used by etcd-ha:members[0]: each member needs its own address",
    },
    {
        label: "duplicate vmIds",
        raw: mutate(P(), (c) => {
            c.members[0].vmId = 7200;
            c.members[1].vmId = 7200;
        }),
        path: "etcd-ha:members[1].vmId",
        message: "7200 is already used by etcd-ha:members[0]: VM ids must be unique",
    },
    {
        label: "explicit vmId collides with an allocated one",
        raw: mutate(P(), (c) => (c.members[0].vmId = 7102)),
        path: "etcd-ha:members[0].vmId",
        message: "7102 collides with the id allocated to etcd2 (proxmox.vmIdBase + address offset): pick another vmId or change vmIdBase",
    },
    {
        label: "duplicate hypervisor names",
        raw: mutate(P(), (c) => (c.hypervisors[1].name = "pve1")),
        path: "etcd-ha:hypervisors[1].name",
        message: '"pve1" is already listed as etcd-ha:hypervisors[0]',
    },
    {
        label: "duplicate host addresses",
        raw: mutate(H(), (c) => (c.hosts[1].address = "127.42.0.11")),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[1].address",
        message: "127.42.0.11 is already used by etcd-ha:hosts[0]: each member needs its own address",
    },
    // --- addresses and networks ---
    {
        label: "member address outside the network CIDR",
        raw: mutate(P(), (c) => (c.members[1].address = "10.9.9.9")),
        path: "etcd-ha:members[1].address",
        message: "10.9.9.9 is outside etcd-ha:network.cidr 10.103.0.0/24: use an address inside it",
    },
    {
        label: "member address equal to the gateway",
        raw: mutate(P(), (c) => (c.members[0].address = "10.103.0.1")),
        path: "etcd-ha:members[0].address",
        message: "10.103.0.1 is the network gateway: pick another address",
    },
    {
        label: "member address is the broadcast address",
        raw: mutate(P(), (c) => (c.members[0].address = "10.103.0.255")),
        path: "etcd-ha:members[0].address",
        message: "10.103.0.255 is the network or broadcast address of 10.103.0.0/24",
    },
    {
        label: "malformed member IP",
        raw: mutate(P(), (c) => (c.members[0].address = "10.103.0.300")),
        path: "etcd-ha:members[0].address",
        message: 'must be an IPv4 address such as 10.103.0.101 (got "10.103.0.300")',
    },
    {
        label: "member without an address",
        raw: mutate(P(), (c) => delete c.members[0].address),
        path: "etcd-ha:members[0].address",
        message: "is required",
    },
    {
        label: "bad CIDR (prefix 33)",
        raw: mutate(P(), (c) => (c.network.cidr = "10.103.0.0/33")),
        path: "etcd-ha:network.cidr",
        message: 'must be an IPv4 CIDR such as 10.103.0.0/24 (got "10.103.0.0/33")',
    },
    {
        label: "CIDR with host bits set",
        raw: mutate(P(), (c) => (c.network.cidr = "10.103.0.5/24")),
        path: "etcd-ha:network.cidr",
        message: 'must be a network address with the host bits zero (e.g. 10.103.0.0/24, not 10.103.0.5/24) (got "10.103.0.5/24")',
    },
    {
        label: "gateway outside the network",
        raw: mutate(P(), (c) => (c.network.gateway = "10.9.0.1")),
        path: "etcd-ha:network.gateway",
        message: "10.9.0.1 is outside etcd-ha:network.cidr 10.103.0.0/24: use an address inside it",
    },
    {
        label: "member on an unknown hypervisor",
        raw: mutate(P(), (c) => (c.members[2].hypervisor = "pve9")),
        path: "etcd-ha:members[2].hypervisor",
        message: '"pve9" is not in etcd-ha:hypervisors (known: pve1, pve2, pve3): add it there or fix the name',
    },
    {
        label: "pool range too small",
        raw: mutate(P(), (c) => {
            delete c.members;
            c.memberPool = { count: 3, addressRange: "10.103.0.101-10.103.0.102" };
        }),
        path: "etcd-ha:memberPool.addressRange",
        message: "10.103.0.101-10.103.0.102 holds only 2 usable address(es) for 3 members: widen the range",
    },
    {
        label: "pool range outside the network",
        raw: mutate(P(), (c) => {
            delete c.members;
            c.memberPool = { count: 3, addressRange: "10.104.0.1-10.104.0.9" };
        }),
        path: "etcd-ha:memberPool.addressRange",
        message: "start address 10.104.0.1 is outside etcd-ha:network.cidr 10.103.0.0/24",
    },
    {
        label: "pool range written high-low",
        raw: mutate(P(), (c) => {
            delete c.members;
            c.memberPool = { count: 3, addressRange: "10.103.0.120-10.103.0.101" };
        }),
        path: "etcd-ha:memberPool.addressRange",
        message: "starts after it ends (10.103.0.120 > 10.103.0.101): write it low-high",
    },
    // --- names ---
    {
        label: "invalid bridge name",
        raw: mutate(P(), (c) => (c.hypervisors[0].bridge.name = "my-bridge-name")),
        path: "etcd-ha:hypervisors[0].bridge.name",
        message: `must be a Linux bridge name: a letter, then letters, digits or '_', at most 10 characters (e.g. vmbr10) (got "my-bridge-name")`,
    },
    {
        label: "Proxmox members without an image checksum",
        raw: mutate(P(), (c) => delete c.proxmox.image),
        path: "etcd-ha:proxmox.image.sha256",
        message:
            "is required with Proxmox members: the sha256 of https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img, " +
            "from the SHA256SUMS file next to it (curl -fsSL https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS | grep ubuntu-24.04-server-cloudimg-amd64.img)",
    },
    {
        label: "image checksum not sha256 hex",
        raw: mutate(P(), (c) => (c.proxmox.image.sha256 = "ABC123")),
        path: "etcd-ha:proxmox.image.sha256",
        message: `must be 64 lower-case hex digits (the image's line in SHA256SUMS) (got "ABC123")`,
    },
    {
        label: "image file name without .qcow2",
        raw: mutate(P(), (c) => (c.proxmox.image.fileName = "noble.img")),
        path: "etcd-ha:proxmox.image.fileName",
        message: `must be a file name ending in .qcow2, such as noble-server-cloudimg-amd64.qcow2 (got "noble.img")`,
    },
    {
        label: "firewall source not an address or CIDR",
        raw: mutate(P(), (c) => (c.proxmox.firewall = { adminCidrs: ["10.0.0.0/24", "office"] })),
        path: "etcd-ha:proxmox.firewall.adminCidrs[1]",
        message: `must be an IPv4 address or CIDR such as 10.103.0.0/24 (got "office")`,
    },
    {
        label: "S3 store without its secret key",
        raw: mutate(H(), (c) => (c.snapshots = { s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups" } })),
        secrets: new Set(["sshPrivateKey", "s3AccessKeyId"]),
        path: "etcd-ha:s3SecretAccessKey",
        message: "is not set: snapshots.s3 copies snapshots with the store's keys; run `pulumi config set --secret etcd-ha:s3SecretAccessKey <value>`",
    },
    {
        label: "S3 store over plain http",
        raw: mutate(H(), (c) => (c.snapshots = { s3: { endpoint: "http://s3.kloud.lan:9000", bucket: "etcd-backups" } })),
        secrets: new Set(["sshPrivateKey", "s3AccessKeyId", "s3SecretAccessKey"]),
        path: "etcd-ha:snapshots.s3.endpoint",
        message: `must be https://host[:port] without a path, such as https://s3.kloud.lan:9000 (only https: the keys sign every request) (got "http://s3.kloud.lan:9000")`,
    },
    {
        label: "S3 key prefix without a trailing slash",
        raw: mutate(H(), (c) => (c.snapshots = { s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups", prefix: "etcd" } })),
        secrets: new Set(["sshPrivateKey", "s3AccessKeyId", "s3SecretAccessKey"]),
        path: "etcd-ha:snapshots.s3.prefix",
        message: `must be empty or path segments of letters, digits, '.', '_' and '-' ending in '/', such as etcd/ (got "etcd")`,
    },
    {
        label: "firewall extra rule with a bad port",
        raw: mutate(P(), (c) => (c.proxmox.firewall = { extraRules: [{ port: "https" }] })),
        path: "etcd-ha:proxmox.firewall.extraRules[0].port",
        message: `must be a port such as 6443 or a range such as 30000:32767 (got "https")`,
    },
    {
        label: "firewall extra rule with port 0",
        raw: mutate(P(), (c) => (c.proxmox.firewall = { extraRules: [{ port: "0" }] })),
        path: "etcd-ha:proxmox.firewall.extraRules[0].port",
        message: `must be ports 1-65535, a range low:high with low at most high, such as 30000:32767 (got "0")`,
    },
    {
        label: "firewall extra rule with a port above 65535",
        raw: mutate(P(), (c) => (c.proxmox.firewall = { extraRules: [{ port: "30000:70000" }] })),
        path: "etcd-ha:proxmox.firewall.extraRules[0].port",
        message: `must be ports 1-65535, a range low:high with low at most high, such as 30000:32767 (got "30000:70000")`,
    },
    {
        label: "firewall extra rule with a range high to low",
        raw: mutate(P(), (c) => (c.proxmox.firewall = { extraRules: [{ port: "32767:30000" }] })),
        path: "etcd-ha:proxmox.firewall.extraRules[0].port",
        message: `must be ports 1-65535, a range low:high with low at most high, such as 30000:32767 (got "32767:30000")`,
    },
    {
        label: "datastore name Proxmox refuses",
        raw: mutate(P(), (c) => (c.hypervisors[0].datastores = { disk: "local lvm", snippets: "local" })),
        path: "etcd-ha:hypervisors[0].datastores.disk",
        message: `must be a Proxmox storage ID such as local or local-lvm: a letter first, then letters, digits, '-', '_' or '.', ending in a letter or digit (got "local lvm")`,
    },
    {
        label: "member name not a DNS label",
        raw: mutate(P(), (c) => (c.members[0].name = "Etcd_1")),
        path: "etcd-ha:members[0].name",
        message: `must be a DNS label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (got "Etcd_1")`,
    },
    // --- etcd settings ---
    {
        label: "ports colliding",
        raw: mutate(P(), (c) => (c.etcd = { ports: { metrics: 2379 } })),
        path: "etcd-ha:etcd.ports.metrics",
        message: "port 2379 collides with etcd.ports.client: give each port its own number (defaults 2379/2380/2381)",
    },
    {
        label: "port out of range",
        raw: mutate(H(), (c) => (c.hosts[0].port = 70000)),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[0].port",
        message: "must be at most 65535 (got 70000)",
    },
    {
        label: "election timeout below 5x heartbeat",
        raw: mutate(P(), (c) => (c.etcd = { electionTimeoutMs: 400 })),
        path: "etcd-ha:etcd.electionTimeoutMs",
        message: "400 ms is less than 5 × heartbeatIntervalMs (100 ms), which etcd refuses: use at least 500 (10× is recommended)",
    },
    {
        label: "unknown topology",
        raw: mutate(P(), (c) => (c.topology = "sideways")),
        path: "etcd-ha:topology",
        message: 'must be one of "external", "stacked" (got "sideways")',
    },
    {
        label: "unsupported etcd version",
        raw: mutate(P(), (c) => (c.etcd = { version: "3.7.0" })),
        path: "etcd-ha:etcd.version",
        message: 'must be an etcd 3.4, 3.5 or 3.6 release such as 3.5.21 (got "3.7.0")',
    },
    {
        label: "quota above 8 GiB",
        raw: mutate(P(), (c) => (c.etcd = { quotaBackendBytes: 17179869184 })),
        path: "etcd-ha:etcd.quotaBackendBytes",
        message: "must be at most 8589934592 (8 GiB), the largest quota etcd supports well (got 17179869184)",
    },
    {
        label: "revision compaction with a duration",
        raw: mutate(P(), (c) => (c.etcd = { autoCompaction: { mode: "revision", retention: "8h" } })),
        path: "etcd-ha:etcd.autoCompaction.retention",
        message: 'with mode revision the retention is a revision count such as 10000 (got "8h")',
    },
    {
        label: "push install without a tarball",
        raw: mutate(P(), (c) => (c.etcd = { install: { method: "push" } })),
        path: "etcd-ha:etcd.install.tarball",
        message: "is required with install.method push: the path of the etcd release tarball on this machine",
    },
    {
        label: "leaf certificates outliving the CA",
        raw: mutate(P(), (c) => (c.etcd = { pki: { caValidityHours: 8760, certValidityHours: 17520 } })),
        path: "etcd-ha:etcd.pki.certValidityHours",
        message: "17520 h outlives the CA (8760 h): shorten it or lengthen caValidityHours",
    },
    {
        label: "renew-now token with a space",
        raw: mutate(P(), (c) => (c.etcd = { pki: { renew: "2026-12-07 10:00" } })),
        path: "etcd-ha:etcd.pki.renew",
        message: "must be 1 to 64 letters, digits, '.', '_', ':' or '-', such as the date 2026-12-07 (got \"2026-12-07 10:00\")",
    },
    {
        label: "RSA key size not allowed",
        raw: mutate(P(), (c) => (c.etcd = { pki: { keyAlgorithm: "RSA", rsaBits: 1024 } })),
        path: "etcd-ha:etcd.pki.rsaBits",
        message: "must be one of 2048, 3072, 4096 (got 1024)",
    },
    // --- Proxmox access ---
    {
        label: "Proxmox members without a proxmox block",
        raw: mutate(P(), (c) => delete c.proxmox),
        path: "etcd-ha:proxmox",
        message: "is required with Proxmox members: set at least etcd-ha:proxmox.endpoint (or clustered: false with per-hypervisor endpoints)",
    },
    {
        label: "Proxmox members without hypervisors",
        raw: mutate(P(), (c) => delete c.hypervisors),
        path: "etcd-ha:hypervisors",
        message: "is required with Proxmox members: list the Proxmox nodes (name, bridge) that may host members",
    },
    {
        label: "Proxmox members without a network",
        raw: mutate(P(), (c) => delete c.network),
        path: "etcd-ha:network",
        message: "is required with Proxmox members: set cidr and gateway of the member network",
    },
    {
        label: "clustered without an endpoint",
        raw: mutate(P(), (c) => delete c.proxmox.endpoint),
        path: "etcd-ha:proxmox.endpoint",
        message: "is required when proxmox.clustered is true: the API URL of any cluster node, e.g. https://pve1.kloud.lan:8006/",
    },
    {
        label: "standalone host without an endpoint",
        raw: mutate(P(), (c) => {
            c.proxmox = { clustered: false };
            c.hypervisors.forEach((h: { endpoint?: string; name: string }) => (h.endpoint = `https://${h.name}:8006/`));
            delete c.hypervisors[1].endpoint;
        }),
        path: "etcd-ha:hypervisors[1].endpoint",
        message: "is required for standalone hosts (proxmox.clustered: false): this node's API URL",
    },
    {
        label: "HA requested on standalone hosts",
        raw: mutate(P(), (c) => {
            c.proxmox = { clustered: false, ha: { enabled: true } };
            c.hypervisors.forEach((h: { endpoint?: string; name: string }) => (h.endpoint = `https://${h.name}:8006/`));
        }),
        path: "etcd-ha:proxmox.ha.enabled",
        message: "HA needs one PVE cluster: set proxmox.clustered: true or ha.enabled: false",
    },
    {
        label: "API token secret not set",
        raw: P(),
        secrets: new Set(["sshPrivateKey", "proxmoxSshPrivateKey"]),
        path: "etcd-ha:proxmoxApiToken",
        message: "is not set: run `pulumi config set --secret etcd-ha:proxmoxApiToken 'user@pve!token=<uuid>'`",
    },
    {
        label: "member SSH private key not set",
        raw: H(),
        secrets: new Set(),
        path: "etcd-ha:sshPrivateKey",
        message: "is not set: run `pulumi config set --secret etcd-ha:sshPrivateKey < ~/.ssh/id_ed25519` (the key for SSH to the members)",
    },
    {
        label: "SSH public key missing for cloud-init",
        raw: mutate(P(), (c) => delete c.ssh.publicKey),
        path: "etcd-ha:ssh.publicKey",
        message: "is required with Proxmox members: the OpenSSH public key cloud-init installs for the admin user",
    },
    {
        label: "existing bridge given an address",
        raw: mutate(P(), (c) => (c.hypervisors[0].bridge.exists = true)),
        path: "etcd-ha:hypervisors[0].bridge.exists",
        message: "an existing bridge is not managed: remove address/ports, or set exists: false to let the program create it",
    },
    // --- user names and restore sources (put into commands and fetched by the members) ---
    {
        label: "admin user that is not a Linux user name",
        raw: mutate(P(), (c) => (c.ssh.user = "Ubuntu Admin")),
        path: "etcd-ha:ssh.user",
        message: `must be a Linux user name such as ubuntu: a lower-case letter or '_' first, then lower-case letters, digits, '_' or '-', at most 32 (got "Ubuntu Admin")`,
    },
    {
        label: "host SSH user that is not a Linux user name",
        raw: mutate(H(), (c) => (c.hosts[1].user = "admin;reboot")),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[1].user",
        message: `must be a Linux user name such as ubuntu: a lower-case letter or '_' first, then lower-case letters, digits, '_' or '-', at most 32 (got "admin;reboot")`,
    },
    {
        label: "hypervisor SSH user that is not a Linux user name",
        raw: mutate(P(), (c) => (c.proxmox.ssh = { username: "-root" })),
        path: "etcd-ha:proxmox.ssh.username",
        message: `must be a Linux user name such as ubuntu: a lower-case letter or '_' first, then lower-case letters, digits, '_' or '-', at most 32 (got "-root")`,
    },
    {
        label: "restore from a scheme the members cannot fetch",
        raw: mutate(H(), (c) => (c.restore = { fromSnapshot: "ftp://backups/etcd/snap.db", sha256: "a".repeat(64) })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:restore.fromSnapshot",
        message: `must be a path on this machine, an http(s):// URL of the file, or s3://bucket/key (letters, digits, '.', '_', '-' and single '/' in the key) in the store of snapshots.s3; other schemes (ftp://, file://) are not fetched: download the snapshot and give its path (got "ftp://backups/etcd/snap.db")`,
    },
    {
        label: "restore from an S3 object without a store",
        raw: mutate(H(), (c) => (c.restore = { fromSnapshot: "s3://backups/etcd/snap.db", sha256: "a".repeat(64) })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:restore.fromSnapshot",
        message: "is an s3:// object, but snapshots.s3 is not set: the members download it from that store with its keys; set snapshots.s3 (endpoint, bucket, caPem) and the two s3 key secrets",
    },
    // --- host identity (every remote step pins the host's SSH host key) ---
    {
        label: "host without a pinned SSH host key",
        raw: mutate(H(), (c) => delete c.hosts[1].hostKey),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[1].hostKey",
        message:
            "is required: the public SSH host key of m2, one line read on the host itself (cat /etc/ssh/ssh_host_ed25519_key.pub), so no other machine at 127.42.0.12 receives the cluster's keys; or set etcd-ha:ssh.insecureIgnoreHostKeys: true to accept any key (not recommended)",
    },
    {
        label: "host key that is not a public key line",
        raw: mutate(H(), (c) => (c.hosts[0].hostKey = "SHA256:Zm9vYmFyYmF6cXV4")),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[0].hostKey",
        message: `must be the host's ed25519 (or ECDSA) public host key, one line such as 'ssh-ed25519 AAAA… root@etcd1' (cat /etc/ssh/ssh_host_ed25519_key.pub on the host) (got "SHA256:Zm9vYmFyYmF6cXV4")`,
    },
    {
        label: "RSA host key (the provider would offer only SHA-1 ssh-rsa)",
        raw: mutate(H(), (c) => (c.hosts[2].hostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ root@m3")),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[2].hostKey",
        message: `must be the host's ed25519 (or ECDSA) public host key, one line such as 'ssh-ed25519 AAAA… root@etcd1' (cat /etc/ssh/ssh_host_ed25519_key.pub on the host) (got "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ root@m3")`,
    },
    {
        label: "Proxmox node hosting members without a snippets datastore",
        raw: mutate(P(), (c) => delete c.hypervisors[2].datastores),
        path: "etcd-ha:hypervisors[2].datastores.snippets",
        message:
            "is required on pve3, which hosts members: only a cloud-init snippet can install the SSH host key the program generates for each VM, which every remote step pins. Enable the Snippets content type on a datastore of pve3 and name it here (VMs created before this check: give their keys as etcd-ha:members[].hostKey), or set etcd-ha:ssh.insecureIgnoreHostKeys: true to accept any host key (not recommended)",
    },
    {
        label: "adopted VM host key that is not a public key line",
        raw: mutate(P(), (c) => (c.members[0].hostKey = "ssh-ed25519")),
        path: "etcd-ha:members[0].hostKey",
        message: `must be the VM's ed25519 (or ECDSA) public host key, one line such as 'ssh-ed25519 AAAA… root@etcd1' (cat /etc/ssh/ssh_host_ed25519_key.pub on the VM) (got "ssh-ed25519")`,
    },
    // --- directories a wipe or a restore would share with something else ---
    {
        label: "data dir at the top level",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/var" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/var" is a top-level directory: a member's removal wipes etcd's data inside it, so give etcd a directory of its own such as /var/etcd`,
    },
    {
        label: "data dir that is a system directory",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/var/lib" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/var/lib" is a system directory shared with other software: give etcd a directory of its own such as /var/lib/etcd`,
    },
    {
        label: "data dir in a user's home",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/home/ubuntu" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/home/ubuntu" is a system directory shared with other software: give etcd a directory of its own such as /home/ubuntu/etcd`,
    },
    {
        label: "data dir under /etc (and containing the PKI dir)",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/etc/etcd" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/etc/etcd" is inside /etc, which is not a place for etcd's data (system-managed, read-only or volatile): use a directory such as /var/lib/etcd`,
    },
    {
        label: "data dir inside this program's state dir",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/var/lib/etcd-ha/data" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/var/lib/etcd-ha/data" lies inside this program's state dir (releases, markers) /var/lib/etcd-ha: keep etcd's data dir apart from it`,
    },
    {
        label: "data dir not normalised",
        raw: mutate(H(), (c) => (c.etcd = { dataDir: "/var/lib/../lib/etcd" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:etcd.dataDir",
        message: `"/var/lib/../lib/etcd" is not a normalised absolute path (no trailing '/', '//', '.' or '..'): write it as /var/lib/etcd`,
    },
    {
        label: "snapshot dir inside the data dir",
        raw: mutate(H(), (c) => (c.snapshots = { dir: "/var/lib/etcd/backups" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:snapshots.dir",
        message: `"/var/lib/etcd/backups" overlaps etcd-ha:etcd.dataDir /var/lib/etcd: keep snapshots apart from etcd's data (a member's removal wipes that data, a restore moves it aside), e.g. /var/backups/etcd`,
    },
    {
        label: "data dir inside the snapshot dir",
        raw: mutate(H(), (c) => {
            c.etcd = { dataDir: "/srv/etcd/data" };
            c.snapshots = { dir: "/srv/etcd" };
        }),
        secrets: HOST_SECRETS,
        path: "etcd-ha:snapshots.dir",
        message: `"/srv/etcd" overlaps etcd-ha:etcd.dataDir /srv/etcd/data: keep snapshots apart from etcd's data (a member's removal wipes that data, a restore moves it aside), e.g. /var/backups/etcd`,
    },
    {
        label: "snapshot dir that is this program's state dir",
        raw: mutate(H(), (c) => (c.snapshots = { dir: "/var/lib/etcd-ha" })),
        secrets: HOST_SECRETS,
        path: "etcd-ha:snapshots.dir",
        message: `"/var/lib/etcd-ha" is this program's state dir (releases, markers) /var/lib/etcd-ha: keep snapshots apart from it`,
    },
    // --- ports and addresses that collide ---
    {
        label: "SSH port equal to etcd's client port on the same address",
        raw: mutate(H(), (c) => (c.hosts[1].port = 2379)),
        secrets: HOST_SECRETS,
        path: "etcd-ha:hosts[1].port",
        message: "SSH port 2379 is etcd's client port on 127.42.0.12 (etcd-ha:etcd.ports.client): change one of them",
    },
    {
        label: "etcd port equal to the VMs' SSH port",
        raw: mutate(P(), (c) => (c.etcd = { ports: { metrics: 22 } })),
        path: "etcd-ha:etcd.ports.metrics",
        message: "22 is the members' SSH port: etcd and sshd cannot both listen on it; use another port (default 2381)",
    },
    {
        label: "member address equal to a hypervisor's bridge address",
        raw: mutate(P(), (c) => (c.members[1].address = "10.103.0.12")),
        path: "etcd-ha:members[1].address",
        message: "10.103.0.12 is the address of pve2's bridge (etcd-ha:hypervisors[1].bridge.address): the hypervisor holds it, so the VM's traffic would go to the host; pick another address",
    },
    {
        label: "member address equal to a hypervisor's SSH address",
        raw: mutate(P(), (c) => (c.hypervisors[0].sshAddress = "10.103.0.103")),
        path: "etcd-ha:members[2].address",
        message: "10.103.0.103 is pve1's SSH address (etcd-ha:hypervisors[0].sshAddress): pick another address for the member",
    },
    // --- inputs the Proxmox provider (or the program's own components) refuses; docs/proxmox-provider.md ---
    {
        label: "CPU type the Proxmox provider does not know",
        raw: mutate(P(), (c) => (c.proxmox.cpuType = "EPYC-Milan-v2")),
        path: "etcd-ha:proxmox.cpuType",
        message:
            "must be a CPU type the Proxmox provider accepts, such as x86-64-v2-AES, x86-64-v3, host or EPYC-Milan (case-sensitive; the whole list is in docs/proxmox-provider.md), " +
            'or custom-<name> for a custom CPU model (got "EPYC-Milan-v2")',
    },
    {
        label: "cluster name starting with a digit, with Proxmox HA (rule names)",
        raw: mutate(P(), (c) => (c.clusterName = "1etcd")),
        path: "etcd-ha:clusterName",
        message:
            '"1etcd" starts with a digit, but the Proxmox HA rules are named after it (1etcd-apart-1) and Proxmox refuses a name that does not start with a letter: start the cluster name with a letter, or set etcd-ha:proxmox.ha.enabled: false',
    },
    {
        label: "PVE 8 HA group name cut to 40 characters ending in '-'",
        raw: mutate(P(), (c) => {
            c.clusterName = "a".repeat(39);
            c.proxmox.ha = { pveMajor: 8 };
        }),
        path: "etcd-ha:clusterName",
        message: `with proxmox.ha.pveMajor 8 the HA group of pve1 is "${"a".repeat(39)}-" (the first 40 characters of <clusterName>-pve1), which ends in '-': Proxmox refuses a group name that does not end in a letter or digit; shorten the cluster name to at most 35 characters, so that every group name stays whole`,
    },
    {
        label: "PVE 8 HA group names that the 40-character cut makes equal",
        raw: mutate(P(), (c) => {
            c.clusterName = "a".repeat(37);
            c.proxmox.ha = { pveMajor: 8 };
        }),
        path: "etcd-ha:clusterName",
        message: `with proxmox.ha.pveMajor 8 the HA groups of pve1 and pve2 would both be "${"a".repeat(37)}-pv" (the first 40 characters of <clusterName>-<node>): shorten the cluster name to at most 35 characters, so that every group name stays whole`,
    },
    {
        label: "bridge port that is not one interface name",
        raw: mutate(P(), (c) => (c.hypervisors[0].bridge.ports = ["eno2 eno3"])),
        path: "etcd-ha:hypervisors[0].bridge.ports[0]",
        message: `must be one network interface name such as eno2, bond0 or eno2.10: a letter or digit, then letters, digits, '_', '.', ':' or '-', at most 15 characters (list several ports as several entries) (got "eno2 eno3")`,
    },
    {
        label: "IPv4 address with a leading zero (bridge address)",
        raw: mutate(P(), (c) => (c.hypervisors[0].bridge.address = "10.103.0.011/24")),
        path: "etcd-ha:hypervisors[0].bridge.address",
        message: `must be written without leading zeros (10.103.0.1, not 10.103.0.01): the Proxmox provider refuses them and some tools read them as octal (got "10.103.0.011/24")`,
    },
    {
        label: "allocated VM id above Proxmox's largest",
        raw: mutate(P(), (c) => {
            c.proxmox.vmIdBase = 999000000;
            c.network.cidr = "10.0.0.0/8";
        }),
        path: "etcd-ha:proxmox.vmIdBase",
        message:
            "999000000 + the offset of 10.103.0.101 in 10.0.0.0/8 (6750309) gives etcd1 the VM id 1005750309, above 999999999, the largest Proxmox accepts: lower vmIdBase to at most 993249688, or give the member a vmId",
    },
    {
        label: "member FQDN longer than a DNS name may be",
        raw: mutate(P(), (c) => (c.network.searchDomain = `${"a".repeat(61)}.`.repeat(4) + "lan")),
        path: "etcd-ha:network.searchDomain",
        message:
            "makes the FQDN of etcd1 (etcd1.<searchDomain>) 257 characters long, more than the 253 a DNS name may have (it goes into certificates and cloud-init): use a search domain of at most 247 characters, or shorter member names",
    },
    // --- typos ---
    {
        label: "unknown top-level key (typo)",
        raw: mutate(P(), (c) => (c.member = [])),
        path: "etcd-ha:member",
        message: "is not a known key: check the spelling against the README's config reference",
    },
    {
        label: "unknown nested key (typo)",
        raw: mutate(P(), (c) => (c.members[0].adress = "10.103.0.111")),
        path: "etcd-ha:members[0].adress",
        message: "is not a known key here: check the spelling against the README's config reference",
    },
];
