/**
 * Quorum-aware topology planning. Pure: no Pulumi or provider imports, so every rule here is unit-tested
 * directly (tests/planner.test.ts).
 */

/** A member as the planner needs it: where it lives and how peers reach it. */
export interface MemberSpec {
    /** etcd member name (also the VM / host name). */
    name: string;
    /** IPv4 address the member listens and advertises on. */
    address: string;
    /** Hypervisor (failure domain) the member runs on; undefined when unknown (plain hosts). */
    hypervisor?: string;
}

/** Ports etcd listens on. */
export interface EtcdPorts {
    /** Client port (etcd default 2379). */
    client: number;
    /** Peer port (etcd default 2380). */
    peer: number;
    /** Plain-HTTP metrics and health port (2381 by convention). */
    metrics: number;
}

export const DEFAULT_PORTS: EtcdPorts = { client: 2379, peer: 2380, metrics: 2381 };

/** A planned member: its spec plus every URL derived from it. */
export interface PlannedMember extends MemberSpec {
    /** Position in the member list (0-based). */
    index: number;
    /** `https://<address>:<client>` — the advertised client URL. */
    clientUrl: string;
    /** `https://<address>:<peer>` — the advertised peer URL. */
    peerUrl: string;
    /** `http://<address>:<metrics>` — `/metrics`, `/health`, `/livez`, `/readyz`. */
    metricsUrl: string;
}

/** Fault tolerance of a layout. */
export interface FaultTolerance {
    /** How many members can fail with a quorum left. */
    members: number;
    /**
     * How many hypervisors can fail, worst case (the fullest ones first), with a quorum left.
     * `null` when members carry no hypervisor (plain hosts without a failure domain).
     */
    hypervisors: number | null;
}

/** Warning codes the planner emits (stable: the plan JSON carries them). */
export type WarningCode = "even-members" | "too-many-members" | "single-member" | "hypervisor-quorum" | "cloud-init-fallback";

/** A soft problem in a layout: reported, never fatal. */
export interface PlanWarning {
    code: WarningCode;
    message: string;
}

/** The whole plan for a member set. */
export interface TopologyPlan {
    members: PlannedMember[];
    quorum: number;
    faultTolerance: FaultTolerance;
    /** Members per hypervisor, in first-use order (empty for plain hosts). */
    membersPerHypervisor: { hypervisor: string; members: number }[];
    /** `name=https://ip:peer,...` for `--initial-cluster`. */
    initialCluster: string;
    /** Advertised client URLs in member order. */
    clientEndpoints: string[];
    warnings: PlanWarning[];
}

/** Votes needed for a decision: floor(N/2)+1. */
export function quorumOf(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new Error(`quorumOf: member count must be a positive integer, got ${n}`);
    return Math.floor(n / 2) + 1;
}

/** Members that can fail with a quorum left: N − quorum(N). */
/** A problem with the member set as a whole: `key` is `members` or `replace` (with `index` for one entry). */
export interface MembershipProblem {
    key: "members" | "replace";
    index?: number;
    message: string;
}

/**
 * The day-2 rules for a member set and its `replace` list, shared by the stack config and EtcdCluster:
 * no 2-member cluster; `replace` names one existing member of a cluster of at least 3.
 */
export function membershipProblems(names: readonly string[], replace: readonly string[]): MembershipProblem[] {
    const out: MembershipProblem[] = [];
    const known = new Set(names);
    replace.forEach((r, index) => {
        if (!known.has(r)) out.push({ key: "replace", index, message: `"${r}" is not a member (members: ${names.join(", ")}): name the member to replace` });
    });
    if (replace.length > 1) out.push({ key: "replace", message: `replace one member per run (got ${replace.join(", ")}): each replacement lowers the fault tolerance until the member has joined again` });
    else if (replace.length === 1 && names.length < 3) out.push({ key: "replace", message: `a ${names.length}-member cluster cannot replace a member and keep quorum: restore it from a snapshot instead` });
    if (names.length === 2) {
        out.push({ key: "members", message: "2 members cannot lose either one (quorum is 2) and cannot shrink safely: use 3 members (or 1 for a throwaway cluster); when scaling in, go from 3 to 1 only by restoring a snapshot" });
    }
    return out;
}

export function memberFaultTolerance(n: number): number {
    return n - quorumOf(n);
}

/**
 * How many hypervisors can fail, in the worst case, with a quorum of members left. The adversary takes
 * the fullest hypervisors first, so the answer is the largest k whose k fullest hypervisors together hold
 * no more than N − quorum members.
 */
export function hypervisorFaultTolerance(membersPerHypervisor: readonly number[]): number {
    const n = membersPerHypervisor.reduce((a, b) => a + b, 0);
    if (n === 0) return 0;
    const spare = memberFaultTolerance(n);
    const sorted = [...membersPerHypervisor].filter((c) => c > 0).sort((a, b) => b - a);
    let lost = 0;
    let k = 0;
    for (const c of sorted) {
        if (lost + c > spare) break;
        lost += c;
        k++;
    }
    return k;
}

/**
 * Assigns a hypervisor to every member that has none. Greedy in list order: each unpinned member goes to
 * the hypervisor with the fewest members among those listed *before it* (ties: configuration order).
 * Appending members therefore never moves an existing one (no VM is replaced when the cluster grows).
 */
export function spreadMembers<T extends { hypervisor?: string }>(
    members: readonly T[],
    hypervisors: readonly string[],
): (T & { hypervisor: string })[] {
    if (hypervisors.length === 0) throw new Error("spreadMembers: no hypervisors to spread members across");
    const count = new Map(hypervisors.map((h) => [h, 0]));
    return members.map((m) => {
        let h = m.hypervisor;
        if (h === undefined) {
            h = hypervisors.reduce((best, cand) => (count.get(cand)! < count.get(best)! ? cand : best), hypervisors[0]);
        }
        count.set(h, (count.get(h) ?? 0) + 1);
        return { ...m, hypervisor: h };
    });
}

/** `https://10.0.0.1:2380` (IPv6 literals bracketed). */
export function url(scheme: "http" | "https", address: string, port: number): string {
    const host = address.includes(":") ? `[${address}]` : address;
    return `${scheme}://${host}:${port}`;
}

/** The `--initial-cluster` value: `name=peerUrl` joined by commas, in member order. */
export function initialClusterString(members: readonly { name: string; peerUrl: string }[]): string {
    return members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
}

/** Plans URLs, quorum, fault tolerance and warnings for a member set (hypervisors already assigned). */
export function planTopology(specs: readonly MemberSpec[], ports: EtcdPorts = DEFAULT_PORTS): TopologyPlan {
    const n = specs.length;
    const members: PlannedMember[] = specs.map((s, index) => ({
        ...s,
        index,
        clientUrl: url("https", s.address, ports.client),
        peerUrl: url("https", s.address, ports.peer),
        metricsUrl: url("http", s.address, ports.metrics),
    }));
    const quorum = quorumOf(n);
    const perHv = new Map<string, number>();
    for (const m of specs) if (m.hypervisor !== undefined) perHv.set(m.hypervisor, (perHv.get(m.hypervisor) ?? 0) + 1);
    const located = specs.every((m) => m.hypervisor !== undefined);
    const faultTolerance: FaultTolerance = {
        members: memberFaultTolerance(n),
        hypervisors: located ? hypervisorFaultTolerance([...perHv.values()]) : null,
    };
    const warnings: PlanWarning[] = [];
    if (n === 1) {
        warnings.push({
            code: "single-member",
            message: "1 member has no fault tolerance: any failure stops the cluster; use 3 or 5 members for HA",
        });
    } else if (n % 2 === 0) {
        warnings.push({
            code: "even-members",
            message:
                `${n} members need a quorum of ${quorum} and tolerate ${faultTolerance.members} failure(s), ` +
                `the same as ${n - 1} members, with one more member to fail and slow writes: use an odd size (3, 5 or 7)`,
        });
    }
    if (n > 7) {
        warnings.push({
            code: "too-many-members",
            message: `${n} members: etcd recommends at most 7 (every write waits for ${quorum} of them); use 5 or 7`,
        });
    }
    if (located && n > 1 && faultTolerance.hypervisors === 0) {
        const [worstHv, worst] = [...perHv.entries()].sort((a, b) => b[1] - a[1])[0];
        warnings.push({
            code: "hypervisor-quorum",
            message:
                `losing hypervisor ${worstHv} (${worst} of ${n} members) loses quorum (${quorum} needed): ` +
                `spread members so that no hypervisor holds more than ${n - quorum}` +
                (perHv.size < 3 ? `, which needs at least 3 hypervisors` : ""),
        });
    }
    return {
        members,
        quorum,
        faultTolerance,
        membersPerHypervisor: [...perHv.entries()].map(([hypervisor, c]) => ({ hypervisor, members: c })),
        initialCluster: initialClusterString(members),
        clientEndpoints: members.map((m) => m.clientUrl),
        warnings,
    };
}
