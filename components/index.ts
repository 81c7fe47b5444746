/**
 * Public API of etcd-ha: the components (EtcdCluster, EtcdPki, EtcdMember) with their argument types, the
 * host shape, and the pure planners and renderers they are built from.
 */
export { EtcdCluster, type EtcdClusterArgs, type EtcdMemberInfo, type HealthGateOptions, type S3Options, type SnapshotOptions, validateClusterArgs } from "./etcdCluster";
export { type S3Credentials } from "./etcd/day2";
export { EtcdMember, type EtcdMemberArgs, type MemberCertFile } from "./etcd/member";
export { EtcdPki, type EtcdPkiArgs, type ExistingCa, type CertPair, validatePkiArgs } from "./pki/etcdPki";
export { type EtcdHost, type SshConnection, sshConnectionArgs, normalizeHostKey } from "./hosts";
export { type EtcdOptions, type EtcdPortOptions, type EtcdAutoCompactionOptions, type EtcdPkiOptions, type EtcdInstallOptions, resolveEtcdOptions } from "./etcd/options";
export { etcdCertTable, type CertSpec, type CertMember, USES, PKI_DIR } from "./pki/certTable";
export { etcdFlags, renderUnit, parseUnit } from "./etcd/flags";
export { kubeApiserverFlags, kubeadmExternalEtcd, prometheusScrapeConfig, type KubeEtcdFilePaths, KUBEADM_ETCD_FILES } from "./etcd/consumers";
export { ETCD_RELEASES } from "./etcd/releases";
export {
    quorumOf,
    memberFaultTolerance,
    hypervisorFaultTolerance,
    spreadMembers,
    planTopology,
    initialClusterString,
    type EtcdPorts,
    type TopologyPlan,
    type PlannedMember,
    type PlanWarning,
} from "./topology/planner";
export { loadStackConfig, validateStackConfig, ConfigValidationError, type ConfigIssue, type ResolvedConfig } from "./config/validate";
export { ProxmoxHosts, type ProxmoxHostsArgs, type ProxmoxNodeInfo } from "./proxmox/proxmoxHosts";
export { EtcdVm, type EtcdVmArgs } from "./proxmox/etcdVm";
export { LinuxBridge, type LinuxBridgeArgs, validateLinuxBridgeArgs } from "./proxmox/linuxBridge";
export {
    planInfrastructure,
    validateInfraSpec,
    antiAffinitySets,
    type InfraSpec,
    type InfraPlan,
    type VmPlan,
    type HypervisorSpec,
    type BridgeSpec,
    type VmMemberSpec,
    type NetworkSpec,
    type ProxmoxSettings,
} from "./proxmox/plan";
export { renderUserData, renderEtcHosts, renderHostsBlock } from "./proxmox/cloudInit";
export { memberFirewallRules, type FirewallRule, type FirewallPolicy } from "./proxmox/firewall";
export { readinessScript, sshDialBudget } from "./proxmox/readiness";
