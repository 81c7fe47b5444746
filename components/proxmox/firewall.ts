/**
 * Per-VM Proxmox firewall rules as data: SSH from the admin sources, the etcd client port from the client
 * sources (and every member, for the health gate and etcdctl), the peer port only from the other members,
 * metrics from the metrics sources, ping, then any extra rules. Inbound policy DROP does the rest. Pure.
 */
import { cidrContains, isCidr4 } from "../net/ip";

/** One inbound rule, in the shape of `proxmoxve.firewall.RulesLegacy` rules. */
export interface FirewallRule {
    type: "in";
    action: "ACCEPT";
    /** `tcp` / `udp`; absent with a macro. */
    proto?: "tcp" | "udp";
    /** Destination port or range. */
    dport?: string;
    /** PVE macro (e.g. `Ping`) instead of proto/dport. */
    macro?: string;
    /** Comma-separated addresses and CIDRs (PVE accepts a list). */
    source: string;
    comment: string;
    enabled: true;
}

/** The per-VM firewall settings that shape the rules. */
export interface FirewallPolicy {
    /** Sources for SSH (22). */
    adminCidrs: readonly string[];
    /** Sources for the client port. */
    clientCidrs: readonly string[];
    /** Sources for the metrics port. */
    metricsCidrs: readonly string[];
    /** Extra inbound rules. */
    extraRules: readonly { port: string; proto: "tcp" | "udp"; sources: readonly string[]; comment?: string }[];
}

/** Inputs of `memberFirewallRules`. */
export interface MemberFirewallArgs {
    /** This VM's member. */
    self: { name: string; address: string };
    /** Every member of the cluster (the peer rule admits the others). */
    members: readonly { name: string; address: string }[];
    ports: { client: number; peer: number; metrics: number };
    /** The member network (ping source). */
    networkCidr: string;
    policy: FirewallPolicy;
}

function covered(sources: readonly string[], address: string): boolean {
    return sources.some((s) => (isCidr4(s) ? cidrContains(s, address) : s === address));
}

/** `sources` plus every address not already inside one of them, deduplicated, in order. */
function withAddresses(sources: readonly string[], addresses: readonly string[]): string[] {
    const out = [...new Set(sources)];
    for (const a of addresses) if (!covered(out, a)) out.push(a);
    return out;
}

/** The inbound rules of one member VM (ACCEPT rules; the VM's inbound policy is DROP). */
export function memberFirewallRules(a: MemberFirewallArgs): FirewallRule[] {
    const accept = (dport: number | string, source: readonly string[], comment: string, proto: "tcp" | "udp" = "tcp"): FirewallRule => ({
        type: "in",
        action: "ACCEPT",
        proto,
        dport: String(dport),
        source: source.join(","),
        comment: `etcd-ha: ${comment}`,
        enabled: true,
    });
    const addresses = a.members.map((m) => m.address);
    const peers = a.members.filter((m) => m.name !== a.self.name).map((m) => m.address);
    const rules: FirewallRule[] = [
        accept(22, a.policy.adminCidrs, "SSH from admins"),
        accept(a.ports.client, withAddresses(a.policy.clientCidrs, addresses), "etcd clients"),
    ];
    if (peers.length > 0) rules.push(accept(a.ports.peer, peers, `etcd peers (the ${peers.length} other member${peers.length === 1 ? "" : "s"})`));
    rules.push(accept(a.ports.metrics, a.policy.metricsCidrs, "etcd metrics and health"));
    rules.push({
        type: "in",
        action: "ACCEPT",
        macro: "Ping",
        source: [...new Set([a.networkCidr, ...a.policy.adminCidrs])].join(","),
        comment: "etcd-ha: ping from the member network and admins",
        enabled: true,
    });
    for (const r of a.policy.extraRules) rules.push(accept(r.port, r.sources, r.comment ?? `extra ${r.proto}/${r.port}`, r.proto));
    return rules;
}
