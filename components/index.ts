/**
 * Public API of etcd-ha: the components (EtcdCluster, EtcdPki, EtcdMember) with their argument types, the
 * host shape, and the pure planners and renderers they are built from.
 */
export { EtcdCluster, EtcdClusterArgs, EtcdMemberInfo, HealthGateOptions, validateClusterArgs } from "./etcdCluster";
export { EtcdMember, EtcdMemberArgs, MemberCertFile } from "./etcd/member";
export { EtcdPki, EtcdPkiArgs, ExistingCa, CertPair, validatePkiArgs } from "./pki/etcdPki";
export { EtcdHost, SshConnection, sshConnectionArgs, normalizeHostKey } from "./hosts";
export { EtcdOptions, EtcdPortOptions, EtcdAutoCompactionOptions, EtcdPkiOptions, EtcdInstallOptions, resolveEtcdOptions } from "./etcd/options";
export { etcdCertTable, CertSpec, CertMember, USES, PKI_DIR } from "./pki/certTable";
export { etcdFlags, renderUnit, parseUnit } from "./etcd/flags";
export { kubeApiserverFlags, kubeadmExternalEtcd, prometheusScrapeConfig, KubeEtcdFilePaths, KUBEADM_ETCD_FILES } from "./etcd/consumers";
export { ETCD_RELEASES } from "./etcd/releases";
export {
    quorumOf,
    memberFaultTolerance,
    hypervisorFaultTolerance,
    spreadMembers,
    planTopology,
    initialClusterString,
    EtcdPorts,
    TopologyPlan,
    PlannedMember,
    PlanWarning,
} from "./topology/planner";
export { loadStackConfig, validateStackConfig, ConfigValidationError, ConfigIssue, ResolvedConfig } from "./config/validate";
export { ProxmoxHosts, ProxmoxHostsArgs, ProxmoxNodeInfo } from "./proxmox/proxmoxHosts";
export { EtcdVm, EtcdVmArgs } from "./proxmox/etcdVm";
export { LinuxBridge, LinuxBridgeArgs, validateLinuxBridgeArgs } from "./proxmox/linuxBridge";
export {
    planInfrastructure,
    validateInfraSpec,
    antiAffinitySets,
    InfraSpec,
    InfraPlan,
    VmPlan,
    HypervisorSpec,
    BridgeSpec,
    VmMemberSpec,
    NetworkSpec,
    ProxmoxSettings,
} from "./proxmox/plan";
export { renderUserData, renderEtcHosts, renderHostsBlock } from "./proxmox/cloudInit";
export { memberFirewallRules, FirewallRule, FirewallPolicy } from "./proxmox/firewall";
export { readinessScript, sshDialBudget } from "./proxmox/readiness";
