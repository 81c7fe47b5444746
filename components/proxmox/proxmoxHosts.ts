/**
 * ProxmoxHosts: the whole Proxmox layer for one cluster — explicit providers, the member bridge and the
 * cloud image on every node that hosts a member, one EtcdVm per member, HA anti-affinity — returning the
 * `EtcdHost`s the etcd layer needs, the same shape as existing machines.
 */
import * as pulumi from "@pulumi/pulumi";
import { invalidArgs } from "../argsError";
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import { EtcdHost } from "../hosts";
import { LinuxBridge } from "./linuxBridge";
import { EtcdVm } from "./etcdVm";
import { InfraPlan, InfraSpec, planInfrastructure, validateInfraSpec } from "./plan";

export const PROXMOX_HOSTS_TYPE = "etcd-ha:index:ProxmoxHosts";

/** Arguments of ProxmoxHosts: the plain spec plus the secrets. */
export interface ProxmoxHostsArgs extends InfraSpec {
    /** Proxmox API token `user@realm!tokenid=<uuid>` (a secret). */
    apiToken: pulumi.Input<string>;
    /** Private key for SSH to the hypervisors (snippet uploads), a secret; omit with `proxmox.sshAgent`. */
    hypervisorSshPrivateKey?: pulumi.Input<string>;
    /** Private key for SSH to the member VMs (readiness, then the etcd layer), a secret. */
    memberSshPrivateKey: pulumi.Input<string>;
}

/** A VM as exported for the stack that installs Kubernetes (stacked) or for inventory. */
export interface ProxmoxNodeInfo {
    name: string;
    fqdn: string;
    address: string;
    hypervisor: string;
    vmId: number;
    role: "etcd" | "control-plane";
    sshUser: string;
}

/** The Proxmox VMs (and what they need) for one etcd cluster. */
export class ProxmoxHosts extends pulumi.ComponentResource {
    /** The plan the resources were built from. */
    public readonly plan: InfraPlan;
    /** One host per member, in member order; installs on each wait for its VM's readiness check. */
    public readonly hosts: EtcdHost[];
    /** The member VMs. */
    public readonly vms: EtcdVm[];
    /** The VMs as plain data (for the Kubernetes stack in the stacked topology). */
    public readonly nodes: pulumi.Output<ProxmoxNodeInfo[]>;

    /**
     * @param name Logical name; children are `${name}-provider` (or `${name}-<node>-provider` for standalone hosts),
     *   `${name}-<node>-bridge`, `${name}-<node>-image`, `${name}-<member>`, `${name}-anti-affinity-<k>` / `${name}-<node>-ha-group`.
     * @param args Spec and secrets.
     * @param opts Resource options.
     */
    constructor(name: string, args: ProxmoxHostsArgs, opts?: pulumi.ComponentResourceOptions) {
        super(PROXMOX_HOSTS_TYPE, name, {}, opts);
        const problems = validateInfraSpec(args);
        if (!args.proxmox.sshAgent && args.hypervisorSshPrivateKey === undefined) {
            problems.push({ path: "hypervisorSshPrivateKey", reason: "is required unless proxmox.sshAgent is true (the provider uploads snippets over SSH)" });
        }
        if (problems.length > 0) invalidArgs("ProxmoxHosts", name, problems);
        const plan = planInfrastructure(args);
        this.plan = plan;

        const providers = new Map<string, proxmoxve.Provider>();
        for (const p of plan.providers) {
            providers.set(
                p.key,
                new proxmoxve.Provider(
                    p.key === "cluster" ? `${name}-provider` : `${name}-${p.key}-provider`,
                    {
                        endpoint: p.endpoint,
                        apiToken: pulumi.secret(args.apiToken),
                        insecure: p.insecure,
                        ssh: {
                            username: p.sshUsername,
                            ...(p.sshAgent ? { agent: true } : { privateKey: pulumi.secret(args.hypervisorSshPrivateKey!) }),
                            ...(p.nodes.length > 0 ? { nodes: p.nodes } : {}),
                        },
                    },
                    { parent: this },
                ),
            );
        }
        const provider = (key: string) => providers.get(key)!;

        const bridges = new Map<string, LinuxBridge>();
        for (const b of plan.bridges) {
            bridges.set(b.hypervisor, new LinuxBridge(`${name}-${b.hypervisor}-bridge`, b.args, { parent: this, provider: provider(b.provider) }));
        }
        const images = new Map<string, proxmoxve.download.File>();
        for (const img of plan.images) {
            images.set(img.hypervisor, new proxmoxve.download.File(`${name}-${img.hypervisor}-image`, img.args, { parent: this, provider: provider(img.provider) }));
        }
        const groups = new Map<string, proxmoxve.Hagroup>();
        if (plan.ha.mode === "groups") {
            for (const g of plan.ha.groups) {
                groups.set(
                    g.hypervisor,
                    new proxmoxve.Hagroup(
                        `${name}-${g.hypervisor}-ha-group`,
                        { group: g.group, nodes: g.nodes, restricted: false, noFailback: false, comment: `etcd-ha ${args.clusterName}: members placed on ${g.hypervisor}` },
                        { parent: this, provider: provider(plan.providers[0].key) },
                    ),
                );
            }
        }

        this.vms = plan.vms.map(
            (vp) =>
                new EtcdVm(
                    `${name}-${vp.member.name}`,
                    {
                        plan: vp,
                        imageId: images.get(vp.member.hypervisor)!.id,
                        bridgeName: bridges.get(vp.member.hypervisor)?.bridgeName,
                        ssh: { user: args.admin.user, privateKey: args.memberSshPrivateKey },
                        ha: plan.ha.mode === "off" ? undefined : { group: groups.get(vp.member.hypervisor)?.group },
                        provider: provider(vp.provider),
                    },
                    { parent: this },
                ),
        );

        if (plan.ha.mode === "rules") {
            const byName = new Map(this.vms.map((v) => [v.host.name, v]));
            plan.ha.sets.forEach((set, k) => {
                const members = set.map((n) => byName.get(n)!);
                new proxmoxve.Harule(
                    `${name}-anti-affinity-${k + 1}`,
                    {
                        rule: `${args.clusterName}-apart-${k + 1}`,
                        type: "resource-affinity",
                        affinity: "negative",
                        resources: members.map((v) => v.haResourceId),
                        comment: `etcd-ha ${args.clusterName}: keep ${set.join(", ")} on different nodes`,
                    },
                    { parent: this, provider: provider(plan.providers[0].key), dependsOn: members.map((v) => v.haResource!) },
                );
            });
        }

        this.hosts = this.vms.map((v) => v.host);
        // Ready VMs only: the list waits for every readiness check (and carries them as dependencies). On their
        // URNs, not their stdout: a URN resolves once the engine has run the check, yet is known in a preview,
        // so the list (all config) shows there.
        this.nodes = pulumi.all(this.vms.map((v) => v.ready.urn)).apply(() =>
            plan.vms.map((vp) => ({
                name: vp.member.name,
                fqdn: vp.member.fqdn,
                address: vp.member.address,
                hypervisor: vp.member.hypervisor,
                vmId: vp.member.vmId,
                role: vp.role,
                sshUser: args.admin.user,
            })),
        );
        this.registerOutputs({ nodes: this.nodes });
    }
}
