/**
 * Cloud-init for member VMs, rendered by pure functions: the `#cloud-config` user data a snippet carries
 * (hostname and FQDN, an /etc/hosts block naming every member, the admin user with its key and
 * passwordless sudo, qemu-guest-agent, time sync) and the /etc/hosts block itself, which the readiness
 * step also keeps in sync on live VMs. No Pulumi imports.
 */
import { stringify } from "yaml";

/** A member as /etc/hosts names it. */
export interface HostsEntry {
    name: string;
    fqdn: string;
    address: string;
}

/** First and last line of the managed /etc/hosts block (one block per cluster). */
export function hostsMarkers(clusterName: string): { begin: string; end: string } {
    return { begin: `# BEGIN etcd-ha ${clusterName} members`, end: `# END etcd-ha ${clusterName} members` };
}

/** The managed block: `<address> <fqdn> <name>` per member, in member order, between the markers. */
export function renderHostsBlock(clusterName: string, members: readonly HostsEntry[]): string {
    const { begin, end } = hostsMarkers(clusterName);
    const lines = members.map((m) => (m.fqdn === m.name ? `${m.address} ${m.name}` : `${m.address} ${m.fqdn} ${m.name}`));
    return [begin, ...lines, end].join("\n");
}

/** A whole /etc/hosts for a fresh VM: loopback and IPv6 defaults (as Ubuntu ships them), then the block. */
export function renderEtcHosts(clusterName: string, members: readonly HostsEntry[]): string {
    return [
        "127.0.0.1 localhost",
        "::1 localhost ip6-localhost ip6-loopback",
        "ff02::1 ip6-allnodes",
        "ff02::2 ip6-allrouters",
        "",
        renderHostsBlock(clusterName, members),
        "",
    ].join("\n");
}

/** What a member VM's user data needs. */
export interface UserDataArgs {
    clusterName: string;
    /** This VM's member (its hostname and FQDN). */
    self: HostsEntry;
    /** Every member of the cluster, for /etc/hosts (so no external DNS is needed). */
    members: readonly HostsEntry[];
    /** Admin user cloud-init creates (passwordless sudo, key-only SSH). */
    user: string;
    /** OpenSSH public key line for that user. */
    publicKey: string;
    /** NTP servers; empty → the distribution's default pool. */
    ntpServers: readonly string[];
}

/** The `#cloud-config` user data for one member VM (YAML; tests parse it back). */
export function renderUserData(a: UserDataArgs): string {
    const doc = {
        hostname: a.self.name,
        fqdn: a.self.fqdn,
        prefer_fqdn_over_hostname: false,
        preserve_hostname: false,
        // The hosts file below is the whole truth; cloud-init must not rewrite it on every boot.
        manage_etc_hosts: false,
        users: [
            {
                name: a.user,
                gecos: "etcd-ha admin",
                groups: ["adm", "sudo"],
                shell: "/bin/bash",
                sudo: "ALL=(ALL) NOPASSWD:ALL",
                lock_passwd: true,
                ssh_authorized_keys: [a.publicKey],
            },
        ],
        disable_root: true,
        ssh_pwauth: false,
        timezone: "Etc/UTC",
        ntp: a.ntpServers.length > 0 ? { enabled: true, servers: [...a.ntpServers] } : { enabled: true },
        package_update: true,
        packages: ["qemu-guest-agent"],
        write_files: [{ path: "/etc/hosts", owner: "root:root", permissions: "0644", content: renderEtcHosts(a.clusterName, a.members) }],
        runcmd: [["systemctl", "enable", "--now", "qemu-guest-agent"]],
    };
    return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/** The snippet's file name on the datastore (unique per cluster and member). */
export function userDataFileName(clusterName: string, member: string): string {
    return `${clusterName}-${member}-user-data.yaml`;
}
