/**
 * The etcd-ha program: the only reader of stack config. Validates every `etcd-ha:*` key up front (all
 * problems in one error, before any resource is created), then builds the hosts (Proxmox VMs or existing
 * machines) and the EtcdCluster on them, and exports what consumers need.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./components/config/validate";
import { EtcdCluster } from "./components/etcdCluster";
import { EtcdHost } from "./components/hosts";

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

/** `external` or `stacked`. */
export const topology = cfg.topology;
/** Members: name, hypervisor, address, client and peer URLs. */
export const members = cluster.members;
/** Client URLs (`https://<ip>:2379`). */
export const clientEndpoints = cluster.clientEndpoints;
/** For kube-apiserver `--etcd-servers`. */
export const etcdServers = cluster.etcdServers;
/** Votes needed for a decision. */
export const quorum = cluster.quorum;
/** Failures survived: members, and hypervisors (worst case; null without hypervisors). */
export const faultTolerance = pulumi
    .all([cluster.memberFaultTolerance, cluster.hypervisorFaultTolerance])
    .apply(([m, h]) => ({ members: m, hypervisors: h < 0 ? null : h }));
/** Layout warnings (code and message). */
export const warnings = cfg.warnings;
