/**
 * EtcdCluster: the public component that turns a set of hosts into one etcd cluster.
 *
 * Foundation stage: plans the topology (quorum, fault tolerance, URLs, initial cluster) and creates one
 * EtcdMember child per host. The PKI, installation and health gate are added by later work; see README.
 */
import * as pulumi from "@pulumi/pulumi";
import { EtcdHost } from "./hosts";
import { DEFAULT_PORTS, EtcdPorts, planTopology, TopologyPlan, url } from "./topology/planner";

/** Arguments of an EtcdCluster. */
export interface EtcdClusterArgs {
    /**
     * The machines that run the members, in member order. The count must be known when the program runs
     * (a plain array), so that every member and its dependencies appear in `pulumi preview`.
     */
    hosts: EtcdHost[];
    /** `external` (dedicated etcd hosts) or `stacked` (etcd on Kubernetes control-plane hosts). Default external. */
    topology?: string;
    /** etcd ports. Default client 2379, peer 2380, metrics 2381. */
    ports?: EtcdPorts;
}

/** A member as exported: name, where it runs and how to reach it. */
export interface EtcdMemberInfo {
    name: string;
    hypervisor?: string;
    address: string;
    clientUrl: string;
    peerUrl: string;
    metricsUrl: string;
}

export const ETCD_CLUSTER_TYPE = "etcd-ha:index:EtcdCluster";
export const ETCD_MEMBER_TYPE = "etcd-ha:index:EtcdMember";

/** Arguments of an EtcdMember. */
export interface EtcdMemberArgs {
    /** The host this member runs on. */
    host: EtcdHost;
    /** The cluster's `--initial-cluster` value. */
    initialCluster: string;
    /** etcd ports. */
    ports: EtcdPorts;
}

/** One etcd member on one host. */
export class EtcdMember extends pulumi.ComponentResource {
    /** Advertised client URL. */
    public readonly clientUrl: pulumi.Output<string>;
    /** Advertised peer URL. */
    public readonly peerUrl: pulumi.Output<string>;

    /**
     * @param name The member's logical name (unique in the stack).
     * @param args The host and cluster-wide values.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_MEMBER_TYPE, name, {}, opts);
        this.clientUrl = pulumi.output(url("https", args.host.address, args.ports.client));
        this.peerUrl = pulumi.output(url("https", args.host.address, args.ports.peer));
        this.registerOutputs({ clientUrl: this.clientUrl, peerUrl: this.peerUrl });
    }
}

/** A highly available etcd cluster on a set of hosts. */
export class EtcdCluster extends pulumi.ComponentResource {
    /** Client URLs of every member (`https://<ip>:2379`). */
    public readonly clientEndpoints: pulumi.Output<string[]>;
    /** The client URLs comma-joined, for kube-apiserver `--etcd-servers`. */
    public readonly etcdServers: pulumi.Output<string>;
    /** Members with their URLs. */
    public readonly members: pulumi.Output<EtcdMemberInfo[]>;
    /** Votes needed for a decision: floor(N/2)+1. */
    public readonly quorum: pulumi.Output<number>;
    /** Member failures the cluster survives. */
    public readonly memberFaultTolerance: pulumi.Output<number>;
    /** Hypervisor failures the cluster survives, worst case (-1 when hosts carry no hypervisor). */
    public readonly hypervisorFaultTolerance: pulumi.Output<number>;

    /** The pure plan behind the outputs. */
    public readonly plan: TopologyPlan;

    /**
     * @param name The cluster's logical name; children are named `${name}-<member>`.
     * @param args Hosts and settings.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_CLUSTER_TYPE, name, {}, opts);
        const ports = args.ports ?? DEFAULT_PORTS;
        const problems = validateClusterArgs(args);
        if (problems.length > 0) {
            throw new pulumi.InputPropertiesError({
                message: `EtcdCluster ${name}: invalid arguments`,
                errors: problems.map((p) => ({ propertyPath: p.path, reason: p.reason })),
            });
        }
        this.plan = planTopology(
            args.hosts.map((h) => ({ name: h.name, address: h.address, hypervisor: h.hypervisor })),
            ports,
        );
        const plan = this.plan;
        args.hosts.forEach(
            (host) =>
                new EtcdMember(`${name}-${host.name}`, { host, initialCluster: plan.initialCluster, ports }, { parent: this }),
        );
        this.clientEndpoints = pulumi.output(plan.clientEndpoints);
        this.etcdServers = pulumi.output(plan.clientEndpoints.join(","));
        this.members = pulumi.output(
            plan.members.map((m) => ({
                name: m.name,
                ...(m.hypervisor !== undefined ? { hypervisor: m.hypervisor } : {}),
                address: m.address,
                clientUrl: m.clientUrl,
                peerUrl: m.peerUrl,
                metricsUrl: m.metricsUrl,
            })),
        );
        this.quorum = pulumi.output(plan.quorum);
        this.memberFaultTolerance = pulumi.output(plan.faultTolerance.members);
        this.hypervisorFaultTolerance = pulumi.output(plan.faultTolerance.hypervisors ?? -1);
        this.registerOutputs({
            clientEndpoints: this.clientEndpoints,
            etcdServers: this.etcdServers,
            members: this.members,
            quorum: this.quorum,
            memberFaultTolerance: this.memberFaultTolerance,
            hypervisorFaultTolerance: this.hypervisorFaultTolerance,
        });
    }
}

/** Problems with EtcdCluster arguments (every one, not only the first). Exported for tests. */
export function validateClusterArgs(args: EtcdClusterArgs): { path: string; reason: string }[] {
    const out: { path: string; reason: string }[] = [];
    if (!args.hosts || args.hosts.length === 0) out.push({ path: "hosts", reason: "at least one host is required (3 or 5 for HA)" });
    const seenName = new Map<string, number>();
    const seenAddr = new Map<string, number>();
    (args.hosts ?? []).forEach((h, i) => {
        if (seenName.has(h.name)) out.push({ path: `hosts[${i}].name`, reason: `"${h.name}" is already used by hosts[${seenName.get(h.name)}]` });
        else seenName.set(h.name, i);
        if (seenAddr.has(h.address)) out.push({ path: `hosts[${i}].address`, reason: `${h.address} is already used by hosts[${seenAddr.get(h.address)}]` });
        else seenAddr.set(h.address, i);
    });
    if (args.topology !== undefined && args.topology !== "external" && args.topology !== "stacked") {
        out.push({ path: "topology", reason: `must be "external" or "stacked" (got "${args.topology}")` });
    }
    return out;
}
