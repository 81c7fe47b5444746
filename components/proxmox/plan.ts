/**
 * The Proxmox layer as data: which providers, bridges, images, snippets, VMs, firewall rules and HA
 * objects a member set needs, with every argument the resources get (except values only the engine knows:
 * image and snippet ids). `ProxmoxHosts` turns this plan into resources one to one, so every rule here is
 * tested directly. Pure: no Pulumi imports.
 */
import { cidrBounds, cidrContains, isCidr4, isIPv4 } from "../net/ip";
import { BRIDGE_NAME, DNS_LABEL } from "../config/schema";
import { HostsEntry, UserDataArgs, userDataFileName } from "./cloudInit";
import { FirewallPolicy, FirewallRule, memberFirewallRules } from "./firewall";
import { readinessScript, sshDialBudget } from "./readiness";

/** The Linux bridge the members' NICs attach to on one hypervisor. */
export interface BridgeSpec {
    /** Bridge name, e.g. `vmbr10`: a letter, then letters, digits or `_`, at most 10 characters. */
    name: string;
    /** The bridge exists already: use it, do not create or manage it. Default false. */
    exists?: boolean;
    /** Host address on the bridge in CIDR form, when the hypervisor routes the member network. */
    address?: string;
    /** Gateway of the hypervisor on this bridge. */
    gateway?: string;
    /** Physical NICs, bonds or VLAN interfaces enslaved to the bridge (needed for cross-host traffic). */
    ports?: string[];
    /** VLAN-aware bridge. Default false. */
    vlanAware?: boolean;
    /** VLAN tag for the members' NICs. */
    vlanId?: number;
    /** MTU of the bridge (and the members' NICs). */
    mtu?: number;
    /** Bring the bridge up at boot. Default true. */
    autostart?: boolean;
    /** Comment shown in the Proxmox UI. */
    comment?: string;
}

/** One Proxmox node that may host members. */
export interface HypervisorSpec {
    /** Proxmox node name, e.g. `pve1`. */
    name: string;
    /** This node's API URL (standalone hosts only). */
    endpoint?: string;
    /** Address the provider SSHes to for snippet uploads; default: what the API reports. */
    sshAddress?: string;
    /** The member bridge on this node. */
    bridge: BridgeSpec;
    /** Datastores: VM disks + cloud-init drive, cloud images (`import` content), snippets (optional). */
    datastores: { disk: string; images: string; snippets?: string };
}

/** One member VM. */
export interface VmMemberSpec {
    /** VM name, hostname and etcd member name (DNS label). */
    name: string;
    /** FQDN (cloud-init, /etc/hosts, certificate SANs). */
    fqdn: string;
    /** Static IPv4 inside the member network. */
    address: string;
    /** The node it runs on. */
    hypervisor: string;
    /** Explicit Proxmox VM id. */
    vmId: number;
    /** vCPUs, memory (MiB) and system disk (GiB). */
    size: { cores: number; memoryMiB: number; diskGiB: number };
    /**
     * The VM's existing public SSH host key (a VM created before host keys were generated): pinned as it is, and
     * no key is generated for it. Omit for new VMs.
     */
    hostKey?: string;
}

/** The member network. */
export interface NetworkSpec {
    /** e.g. `10.103.0.0/24`. */
    cidr: string;
    /** Members' default gateway. */
    gateway: string;
    /** Resolvers. */
    dnsServers?: string[];
    /** Search domain. */
    searchDomain?: string;
    /** NTP servers (empty: the distribution's pool). */
    ntpServers?: string[];
}

/** Plain (non-secret) Proxmox settings. */
export interface ProxmoxSettings {
    /** API URL of the PVE cluster (clustered). */
    endpoint?: string;
    /** Accept a self-signed API certificate. Default false. */
    insecure?: boolean;
    /** One PVE cluster (one provider) or standalone hosts (one provider each). Default true. */
    clustered?: boolean;
    /** SSH user on the hypervisors for snippet uploads. Default root. */
    sshUsername?: string;
    /** Use the operator's ssh-agent for the hypervisors. Default false. */
    sshAgent?: boolean;
    /** HA: `enabled` (default: clustered), `pveMajor` 9 (rules, default) or 8 (groups). */
    ha?: { enabled?: boolean; pveMajor?: 8 | 9 };
    /** Cloud image: URL, sha256, datastore file name (`.qcow2`). */
    image: { url: string; sha256: string; fileName: string };
    /** QEMU CPU type. Default `x86-64-v2-AES`. */
    cpuType?: string;
    /** Readiness bound in seconds. Default 900. */
    readyTimeoutSeconds?: number;
    /** Per-VM firewall. Default enabled, every source the member network. */
    firewall?: { enabled?: boolean } & Partial<FirewallPolicy>;
}

/** Everything the plan needs. */
export interface InfraSpec {
    clusterName: string;
    topology: "external" | "stacked";
    proxmox: ProxmoxSettings;
    hypervisors: HypervisorSpec[];
    network: NetworkSpec;
    members: VmMemberSpec[];
    /** Admin user and public key cloud-init installs. */
    admin: { user: string; publicKey: string };
    /** etcd ports (firewall). */
    ports: { client: number; peer: number; metrics: number };
}

/** One provider: `cluster` for a PVE cluster, else the hypervisor's name. */
export interface ProviderPlan {
    key: string;
    endpoint: string;
    insecure: boolean;
    sshUsername: string;
    sshAgent: boolean;
    /** Per-node SSH addresses (hypervisors with `sshAddress`). */
    nodes: { name: string; address: string }[];
}

export interface BridgePlan {
    hypervisor: string;
    provider: string;
    args: { nodeName: string; name: string; address?: string; gateway?: string; ports: string[]; vlanAware: boolean; mtu?: number; autostart: boolean; comment: string };
}

export interface ImagePlan {
    hypervisor: string;
    provider: string;
    args: {
        nodeName: string;
        datastoreId: string;
        contentType: "import";
        url: string;
        fileName: string;
        checksum: string;
        checksumAlgorithm: "sha256";
        overwrite: false;
        uploadTimeout: number;
    };
}

/** VM arguments, except `disks[0].importFrom` (the image id) and `initialization.userDataFileId` (the snippet id). */
export interface VmArgsPlan {
    nodeName: string;
    vmId: number;
    name: string;
    description: string;
    tags: string[];
    onBoot: true;
    started: true;
    stopOnDestroy: true;
    migrate: true;
    agent: { enabled: boolean; trim: boolean; type: "virtio"; waitForIp: { disabled: true } };
    cpu: { cores: number; sockets: 1; type: string };
    memory: { dedicated: number; floating: 0 };
    operatingSystem: { type: "l26" };
    scsiHardware: "virtio-scsi-single";
    serialDevices: { device: "socket" }[];
    disks: { interface: "scsi0"; datastoreId: string; size: number; iothread: true; discard: "on"; ssd: true }[];
    networkDevices: { bridge: string; model: "virtio"; firewall: boolean; vlanId?: number; mtu?: number }[];
    initialization: {
        datastoreId: string;
        ipConfigs: { ipv4: { address: string; gateway: string } }[];
        dns: { domain?: string; servers: string[] };
        userAccount?: { username: string; keys: string[] };
    };
}

export interface VmPlan {
    member: VmMemberSpec;
    provider: string;
    role: "etcd" | "control-plane";
    /**
     * The cloud-init snippet, or undefined when the node has no snippets datastore (built-in user account
     * instead, and no generated host key). `userData` is rendered with the VM's generated host key.
     */
    snippet?: { nodeName: string; datastoreId: string; fileName: string; userData: Omit<UserDataArgs, "hostKey"> };
    /** Whether the bridge is one this program manages (the VM then depends on it). */
    managedBridge: boolean;
    vm: VmArgsPlan;
    firewall?: {
        options: { nodeName: string; vmId: number; enabled: true; inputPolicy: "DROP"; outputPolicy: "ACCEPT"; macfilter: true; dhcp: false };
        rules: FirewallRule[];
    };
    readiness: { script: string; dialErrorLimit: number; perDialTimeout: number };
}

export type HaPlan =
    | { mode: "off" }
    /** PVE 9: every VM an HA resource; negative resource-affinity rules over sets of members on distinct nodes. */
    | { mode: "rules"; sets: string[][] }
    /** PVE 8: one HA group per node preferring it; each VM in its node's group. */
    | { mode: "groups"; groups: { hypervisor: string; group: string; nodes: Record<string, number> }[] };

export interface InfraPlan {
    providers: ProviderPlan[];
    bridges: BridgePlan[];
    images: ImagePlan[];
    vms: VmPlan[];
    ha: HaPlan;
}

/** A problem with the spec: a dotted path and what to do. */
export interface SpecIssue {
    path: string;
    reason: string;
}

/** Every problem with an InfraSpec (not only the first). */
export function validateInfraSpec(s: InfraSpec): SpecIssue[] {
    const out: SpecIssue[] = [];
    const add = (path: string, reason: string) => out.push({ path, reason });
    const clustered = s.proxmox.clustered ?? true;
    if (!DNS_LABEL.test(s.clusterName)) add("clusterName", `"${s.clusterName}" is not a DNS label`);
    if (clustered && !s.proxmox.endpoint) add("proxmox.endpoint", "is required for a PVE cluster (clustered: true)");
    if (!clustered && s.proxmox.ha?.enabled) add("proxmox.ha.enabled", "HA needs one PVE cluster: set clustered: true or ha.enabled: false");
    if (!/^[0-9a-f]{64}$/.test(s.proxmox.image.sha256)) add("proxmox.image.sha256", "must be 64 lower-case hex digits (the image's line in SHA256SUMS)");
    if (!/\.qcow2$/.test(s.proxmox.image.fileName)) add("proxmox.image.fileName", "must end in .qcow2 (PVE imports only qcow2/raw names from the import content type)");
    if (!isCidr4(s.network.cidr)) add("network.cidr", `"${s.network.cidr}" is not an IPv4 CIDR`);
    else if (!cidrContains(s.network.cidr, s.network.gateway)) add("network.gateway", `${s.network.gateway} is outside ${s.network.cidr}`);
    const hvs = new Map<string, number>();
    s.hypervisors.forEach((h, i) => {
        if (hvs.has(h.name)) add(`hypervisors[${i}].name`, `"${h.name}" is listed twice`);
        hvs.set(h.name, i);
        if (!BRIDGE_NAME.test(h.bridge.name)) add(`hypervisors[${i}].bridge.name`, `"${h.bridge.name}" is not a bridge name: a letter, then letters, digits or '_', at most 10 characters`);
        if (h.bridge.exists && (h.bridge.address !== undefined || (h.bridge.ports ?? []).length > 0)) {
            add(`hypervisors[${i}].bridge.exists`, "an existing bridge is not managed: drop address and ports, or set exists: false");
        }
        if (!clustered && !h.endpoint) add(`hypervisors[${i}].endpoint`, "is required for standalone hosts (clustered: false)");
    });
    const names = new Map<string, number>();
    const ids = new Map<number, number>();
    const addrs = new Map<string, number>();
    s.members.forEach((m, i) => {
        if (!DNS_LABEL.test(m.name)) add(`members[${i}].name`, `"${m.name}" is not a DNS label`);
        if (names.has(m.name)) add(`members[${i}].name`, `"${m.name}" is already used by members[${names.get(m.name)}]`);
        names.set(m.name, i);
        if (ids.has(m.vmId)) add(`members[${i}].vmId`, `${m.vmId} is already used by members[${ids.get(m.vmId)}]`);
        ids.set(m.vmId, i);
        if (addrs.has(m.address)) add(`members[${i}].address`, `${m.address} is already used by members[${addrs.get(m.address)}]`);
        addrs.set(m.address, i);
        if (!isIPv4(m.address) || (isCidr4(s.network.cidr) && !cidrContains(s.network.cidr, m.address))) add(`members[${i}].address`, `${m.address} is not an address inside ${s.network.cidr}`);
        if (!hvs.has(m.hypervisor)) add(`members[${i}].hypervisor`, `"${m.hypervisor}" is not in hypervisors`);
    });
    if (s.members.length === 0) add("members", "at least one member is required (3 or 5 for HA)");
    return out;
}

/** PVE tags: lower-case letters, digits and `-_+.`; sorted and unique (PVE stores them sorted). */
export function vmTags(values: readonly string[]): string[] {
    return [...new Set(values.map((v) => v.toLowerCase().replace(/[^a-z0-9_+.-]/g, "-")))].sort();
}

/**
 * Anti-affinity sets: members grouped so that no set holds two members of one node (the k-th member of
 * every node forms set k). With at most one member per node that is one set of every member; with more
 * (six on two) each set keeps apart what can be kept apart. Sets of one member need no rule and are left out.
 */
export function antiAffinitySets(members: readonly { name: string; hypervisor: string }[]): string[][] {
    const seen = new Map<string, number>();
    const sets: string[][] = [];
    for (const m of members) {
        const k = seen.get(m.hypervisor) ?? 0;
        seen.set(m.hypervisor, k + 1);
        (sets[k] ??= []).push(m.name);
    }
    return sets.filter((set) => set.length > 1);
}

/** The whole plan. Throws nothing: call `validateInfraSpec` first. */
export function planInfrastructure(s: InfraSpec): InfraPlan {
    const clustered = s.proxmox.clustered ?? true;
    const used = [...new Set(s.members.map((m) => m.hypervisor))];
    const hv = new Map(s.hypervisors.map((h) => [h.name, h]));
    const usedHvs = used.map((n) => hv.get(n)!);
    const sshUsername = s.proxmox.sshUsername ?? "root";
    const sshAgent = s.proxmox.sshAgent ?? false;
    const insecure = s.proxmox.insecure ?? false;
    const sshNodes = (hs: readonly HypervisorSpec[]) => hs.filter((h) => h.sshAddress).map((h) => ({ name: h.name, address: h.sshAddress! }));
    const providers: ProviderPlan[] = clustered
        ? [{ key: "cluster", endpoint: s.proxmox.endpoint!, insecure, sshUsername, sshAgent, nodes: sshNodes(usedHvs) }]
        : usedHvs.map((h) => ({ key: h.name, endpoint: h.endpoint!, insecure, sshUsername, sshAgent, nodes: sshNodes([h]) }));
    const providerOf = (node: string) => (clustered ? "cluster" : node);

    const bridges: BridgePlan[] = usedHvs
        .filter((h) => !h.bridge.exists)
        .map((h) => ({
            hypervisor: h.name,
            provider: providerOf(h.name),
            args: {
                nodeName: h.name,
                name: h.bridge.name,
                ...(h.bridge.address !== undefined ? { address: h.bridge.address } : {}),
                ...(h.bridge.gateway !== undefined ? { gateway: h.bridge.gateway } : {}),
                ports: h.bridge.ports ?? [],
                vlanAware: h.bridge.vlanAware ?? false,
                ...(h.bridge.mtu !== undefined ? { mtu: h.bridge.mtu } : {}),
                autostart: h.bridge.autostart ?? true,
                comment: h.bridge.comment ?? `etcd-ha ${s.clusterName} member network`,
            },
        }));

    const images: ImagePlan[] = usedHvs.map((h) => ({
        hypervisor: h.name,
        provider: providerOf(h.name),
        args: {
            nodeName: h.name,
            datastoreId: h.datastores.images,
            contentType: "import",
            url: s.proxmox.image.url,
            fileName: s.proxmox.image.fileName,
            checksum: s.proxmox.image.sha256,
            checksumAlgorithm: "sha256",
            // A moved upstream file must not silently replace the image VMs were built from.
            overwrite: false,
            uploadTimeout: 1800,
        },
    }));

    const ha: HaPlan = !(s.proxmox.ha?.enabled ?? clustered)
        ? { mode: "off" }
        : (s.proxmox.ha?.pveMajor ?? 9) === 9
          ? { mode: "rules", sets: antiAffinitySets(s.members) }
          : {
                mode: "groups",
                groups: used.map((node) => ({
                    hypervisor: node,
                    group: `${s.clusterName}-${node}`.slice(0, 40),
                    nodes: Object.fromEntries(used.map((n) => [n, n === node ? 2 : 1])),
                })),
            };

    const role = s.topology === "stacked" ? "control-plane" : "etcd";
    const prefix = cidrBounds(s.network.cidr).prefix;
    const hostsEntries: HostsEntry[] = s.members.map((m) => ({ name: m.name, fqdn: m.fqdn, address: m.address }));
    const fw = s.proxmox.firewall ?? {};
    const fwEnabled = fw.enabled ?? true;
    const policy: FirewallPolicy = {
        adminCidrs: fw.adminCidrs ?? [s.network.cidr],
        clientCidrs: fw.clientCidrs ?? [s.network.cidr],
        metricsCidrs: fw.metricsCidrs ?? [s.network.cidr],
        extraRules: fw.extraRules ?? [],
    };
    const timeout = s.proxmox.readyTimeoutSeconds ?? 900;
    const dial = sshDialBudget(timeout);

    const vms: VmPlan[] = s.members.map((m) => {
        const h = hv.get(m.hypervisor)!;
        const snippetsDs = h.datastores.snippets;
        const snippet = snippetsDs
            ? {
                  nodeName: h.name,
                  datastoreId: snippetsDs,
                  fileName: userDataFileName(s.clusterName, m.name),
                  userData: {
                      clusterName: s.clusterName,
                      self: { name: m.name, fqdn: m.fqdn, address: m.address },
                      members: hostsEntries,
                      user: s.admin.user,
                      publicKey: s.admin.publicKey,
                      ntpServers: s.network.ntpServers ?? [],
                  },
              }
            : undefined;
        const vm: VmArgsPlan = {
            nodeName: h.name,
            vmId: m.vmId,
            name: m.name,
            description: `etcd-ha: ${role === "etcd" ? "etcd member" : "Kubernetes control-plane node with a stacked etcd member"} ${m.name} of cluster ${s.clusterName} (${s.topology} topology). Managed by Pulumi.`,
            tags: vmTags([s.clusterName, role, s.topology]),
            onBoot: true,
            started: true,
            stopOnDestroy: true,
            // A changed hypervisor migrates the VM (data and member identity kept) instead of recreating it empty.
            migrate: true,
            // The agent is installed by the snippet's cloud-config; without a snippet there is none, and an
            // enabled agent that never answers stalls every create and shutdown.
            agent: { enabled: snippet !== undefined, trim: true, type: "virtio", waitForIp: { disabled: true } },
            cpu: { cores: m.size.cores, sockets: 1, type: s.proxmox.cpuType ?? "x86-64-v2-AES" },
            memory: { dedicated: m.size.memoryMiB, floating: 0 },
            operatingSystem: { type: "l26" },
            scsiHardware: "virtio-scsi-single",
            serialDevices: [{ device: "socket" }],
            disks: [{ interface: "scsi0", datastoreId: h.datastores.disk, size: m.size.diskGiB, iothread: true, discard: "on", ssd: true }],
            networkDevices: [
                {
                    bridge: h.bridge.name,
                    model: "virtio",
                    firewall: fwEnabled,
                    ...(h.bridge.vlanId !== undefined ? { vlanId: h.bridge.vlanId } : {}),
                    ...(h.bridge.mtu !== undefined ? { mtu: h.bridge.mtu } : {}),
                },
            ],
            initialization: {
                datastoreId: h.datastores.disk,
                ipConfigs: [{ ipv4: { address: `${m.address}/${prefix}`, gateway: s.network.gateway } }],
                dns: { ...(s.network.searchDomain ? { domain: s.network.searchDomain } : {}), servers: s.network.dnsServers ?? [] },
                ...(snippet ? {} : { userAccount: { username: s.admin.user, keys: [s.admin.publicKey] } }),
            },
        };
        return {
            member: m,
            provider: providerOf(h.name),
            role,
            snippet,
            managedBridge: !h.bridge.exists,
            vm,
            firewall: fwEnabled
                ? {
                      options: { nodeName: h.name, vmId: m.vmId, enabled: true, inputPolicy: "DROP", outputPolicy: "ACCEPT", macfilter: true, dhcp: false },
                      rules: memberFirewallRules({ self: m, members: s.members, ports: s.ports, networkCidr: s.network.cidr, policy }),
                  }
                : undefined,
            readiness: {
                script: readinessScript({ vmName: m.name, clusterName: s.clusterName, timeoutSeconds: timeout, members: hostsEntries }),
                ...dial,
            },
        };
    });
    return { providers, bridges, images, vms, ha };
}
