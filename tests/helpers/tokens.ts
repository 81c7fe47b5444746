/** Type tokens in one place (they change between provider versions). */
export const T = {
    stack: "pulumi:pulumi:Stack",
    cluster: "etcd-ha:index:EtcdCluster",
    member: "etcd-ha:index:EtcdMember",
} as const;
