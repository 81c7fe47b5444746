/**
 * The etcd-ha program: the only reader of stack config. Validates every `etcd-ha:*` key up front (all
 * problems in one error, before any resource is created), then builds the hosts (Proxmox VMs or existing
 * machines) and the EtcdCluster on them, and exports what consumers need.
 *
 * The program is an exported function (which the Pulumi language host calls and whose result becomes the
 * stack outputs), so test harnesses can run it repeatedly in one process.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./components/config/validate";
import { EtcdCluster, EtcdMemberInfo } from "./components/etcdCluster";
import { EtcdHost } from "./components/hosts";
import { PlanWarning } from "./components/topology/planner";

/** Stack outputs. */
interface StackOutputs {
    /** `external` or `stacked`. */
    topology: string;
    /** Members: name, hypervisor, address, client, peer and metrics URLs. */
    members: pulumi.Output<EtcdMemberInfo[]>;
    /** Client URLs (`https://<ip>:2379`). */
    clientEndpoints: pulumi.Output<string[]>;
    /** For kube-apiserver `--etcd-servers`. */
    etcdServers: pulumi.Output<string>;
    /** Votes needed for a decision. */
    quorum: pulumi.Output<number>;
    /** Failures survived: members, and hypervisors (worst case; null without hypervisors). */
    faultTolerance: pulumi.Output<{ members: number; hypervisors: number | null }>;
    /** Layout warnings (code and message). */
    warnings: PlanWarning[];
}

export = async (): Promise<StackOutputs> => {
    const cfg = loadStackConfig(pulumi.runtime.allConfig());
    const config = new pulumi.Config();
    const sshPrivateKey = config.requireSecret("sshPrivateKey");

    for (const w of cfg.warnings) {
        void pulumi.log.warn(`${w.message} [${w.code}]`);
    }

    // Proxmox mode: the VMs (and so the hosts' SSH endpoints) come from the Proxmox layer; until that layer
    // exists the hosts are described from config, with the same shape.
    const hosts: EtcdHost[] = cfg.members.map((m) => ({
        name: m.name,
        fqdn: m.fqdn,
        address: m.address,
        hypervisor: m.hypervisor,
        vmId: m.vmId,
        connection: { host: m.address, port: m.sshPort, user: m.sshUser, privateKey: sshPrivateKey },
    }));

    const cluster = new EtcdCluster(cfg.clusterName, { hosts, topology: cfg.topology, ports: cfg.etcd.ports });

    return {
        topology: cfg.topology,
        members: cluster.members,
        clientEndpoints: cluster.clientEndpoints,
        etcdServers: cluster.etcdServers,
        quorum: cluster.quorum,
        faultTolerance: pulumi
            .all([cluster.memberFaultTolerance, cluster.hypervisorFaultTolerance])
            .apply(([m, h]) => ({ members: m, hypervisors: h < 0 ? null : h })),
        warnings: cfg.warnings,
    };
};
