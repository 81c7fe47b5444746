/**
 * What consumers of the cluster get, rendered by pure functions: the kube-apiserver flags, the kubeadm
 * `ClusterConfiguration` `etcd.external` block, and a Prometheus scrape config for the metrics listeners.
 */
import { stringify } from "yaml";

/** Where a Kubernetes control-plane node keeps the etcd client files (kubeadm's layout). */
export interface KubeEtcdFilePaths {
    /** etcd CA certificate. Default `/etc/kubernetes/pki/etcd/ca.crt`. */
    caFile: string;
    /** kube-apiserver's etcd client certificate. Default `/etc/kubernetes/pki/apiserver-etcd-client.crt`. */
    certFile: string;
    /** Its key. Default `/etc/kubernetes/pki/apiserver-etcd-client.key`. */
    keyFile: string;
}

/** kubeadm's paths for the external-etcd client files. */
export const KUBEADM_ETCD_FILES: KubeEtcdFilePaths = {
    caFile: "/etc/kubernetes/pki/etcd/ca.crt",
    certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
    keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
};

/** kube-apiserver flags, one per line: `--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`. */
export function kubeApiserverFlags(endpoints: readonly string[], files: KubeEtcdFilePaths = KUBEADM_ETCD_FILES): string {
    return [
        `--etcd-servers=${endpoints.join(",")}`,
        `--etcd-cafile=${files.caFile}`,
        `--etcd-certfile=${files.certFile}`,
        `--etcd-keyfile=${files.keyFile}`,
        "",
    ].join("\n");
}

/** A kubeadm `ClusterConfiguration` (v1beta4) with only the `etcd.external` block, as YAML. */
export function kubeadmExternalEtcd(endpoints: readonly string[], files: KubeEtcdFilePaths = KUBEADM_ETCD_FILES): string {
    return stringify({
        apiVersion: "kubeadm.k8s.io/v1beta4",
        kind: "ClusterConfiguration",
        etcd: { external: { endpoints: [...endpoints], caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile } },
    });
}

/** A metrics target: member name and `host:port` of its plain-HTTP metrics listener. */
export interface MetricsTarget {
    member: string;
    target: string;
}

/** A Prometheus `scrape_configs` entry (a YAML list with one job), one static target per member, labelled. */
export function prometheusScrapeConfig(cluster: string, targets: readonly MetricsTarget[]): string {
    return stringify([
        {
            job_name: `etcd-${cluster}`,
            scheme: "http",
            metrics_path: "/metrics",
            static_configs: targets.map((t) => ({ targets: [t.target], labels: { etcd_cluster: cluster, etcd_member: t.member } })),
        },
    ]);
}
