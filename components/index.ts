/** Public API of etcd-ha: components, their argument types, and the pure planner. */
export { EtcdCluster, EtcdClusterArgs, EtcdMember, EtcdMemberArgs, EtcdMemberInfo } from "./etcdCluster";
export { EtcdHost, SshConnection } from "./hosts";
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
