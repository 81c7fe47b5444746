/**
 * Example: a Kubernetes stack that brings its own etcd. Three existing control-plane machines (cp1..cp3)
 * run a stacked etcd cluster (an EtcdCluster with topology "stacked"); the stack then installs the etcd
 * CA and kube-apiserver's etcd client certificate where kubeadm expects them, and exports what
 * `kubeadm init` and kube-apiserver need.
 *
 * A consumer imports from the package (`import { EtcdCluster, EtcdHost } from "etcd-ha"`); this file
 * imports from ../../components so the repository type-checks it (`npx tsc --noEmit -p .`). It is a Pulumi
 * program, not a module to import: run it as the `main` of a project.
 *
 * Config: `sshPrivateKey` (secret), `hostKeys` (each node's public SSH host key by name, read on the node:
 * `cat /etc/ssh/ssh_host_ed25519_key.pub`; every remote step accepts only that key), optional `sshUser`
 * (default root), `controlPlaneEndpoint` (default the first node's FQDN on 6443), `kubernetesVersion`
 * (default v1.33.0).
 */
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { parse, stringify } from "yaml";
import { EtcdCluster, EtcdHost, KUBEADM_ETCD_FILES, SshConnection, sshConnectionArgs } from "../../components";

const config = new pulumi.Config();
const hostKeys = config.requireObject<Record<string, string>>("hostKeys");
const connection = (name: string, address: string): SshConnection => ({
    host: address,
    port: 22,
    user: config.get("sshUser") ?? "root",
    privateKey: config.requireSecret("sshPrivateKey"),
    hostKey: hostKeys[name],
});

// The control-plane machines: they exist already; the stack only needs their names, addresses and SSH.
const hosts: EtcdHost[] = [
    { name: "cp1", fqdn: "cp1.k8s.example.internal", address: "10.20.0.11" },
    { name: "cp2", fqdn: "cp2.k8s.example.internal", address: "10.20.0.12" },
    { name: "cp3", fqdn: "cp3.k8s.example.internal", address: "10.20.0.13" },
].map((h) => ({ ...h, connection: connection(h.name, h.address) }));

// etcd on the control-plane nodes; every output below waits until all three members report healthy.
const etcd = new EtcdCluster("k8s-etcd", { hosts, topology: "stacked", etcd: { version: "3.5.21" } });

// The client files kube-apiserver reads (kubeadm's paths, the ones kubeApiserverFlags and
// kubeadmEtcdExternal name). All three travel on stdin, never on a command line; the bundle is a secret
// because it holds the private key, and nothing is logged.
const bundle = pulumi.secret(
    pulumi
        .all([etcd.caCertPem, etcd.apiserverClientCertPem, etcd.apiserverClientKeyPem])
        .apply(([ca, cert, key]) =>
            [`### ${KUBEADM_ETCD_FILES.caFile} 0644`, ca.trimEnd(), `### ${KUBEADM_ETCD_FILES.certFile} 0644`, cert.trimEnd(), `### ${KUBEADM_ETCD_FILES.keyFile} 0600`, key.trimEnd(), ""].join("\n"),
        ),
);
// Splits the bundle at its `### <path> <mode>` headers into temporary files, then installs each one.
const installClientFiles = [
    "set -eu",
    's=; [ "$(id -u)" -eq 0 ] || s=sudo',
    'tmp=$(mktemp -d); trap \'rm -rf "$tmp"\' EXIT; umask 077',
    `awk -v d="$tmp" '/^### /{n++; print $2, $3 > (d "/list"); f = d "/" n; next} {print > f}'`,
    'n=0; while read -r path mode; do n=$((n+1)); $s install -D -m "$mode" -o root -g root "$tmp/$n" "$path"; done < "$tmp/list"',
].join("\n");

const clientFiles = hosts.map(
    (h) =>
        new remote.Command(`${h.name}-etcd-client-files`, {
            // The same connection as the etcd steps, host key pinned.
            connection: sshConnectionArgs(h.connection),
            create: installClientFiles,
            stdin: bundle,
            logging: "none",
            addPreviousOutputInEnv: false,
            triggers: [etcd.caCertPem, etcd.apiserverClientCertPem],
        }),
);

// A complete kubeadm ClusterConfiguration: the package's etcd.external block plus this cluster's settings.
const kubeadmConfig = etcd.kubeadmEtcdExternal.apply((external) =>
    stringify({
        ...(parse(external) as Record<string, unknown>),
        kubernetesVersion: config.get("kubernetesVersion") ?? "v1.33.0",
        controlPlaneEndpoint: config.get("controlPlaneEndpoint") ?? `${hosts[0].fqdn}:6443`,
        apiServer: { certSANs: hosts.flatMap((h) => [h.fqdn, h.address]) },
    }),
);

export const etcdServers = etcd.etcdServers;
export const kubeApiserverFlags = etcd.kubeApiserverFlags;
export const kubeadmEtcdExternal = etcd.kubeadmEtcdExternal;
export const kubeadmClusterConfiguration = kubeadmConfig;
export const etcdQuorum = etcd.quorum;
/** One line per node once its client files are installed. */
export const clientFilesInstalled = pulumi.all(clientFiles.map((c) => c.id)).apply((ids) => ids.map((_, i) => `${hosts[i].name}: ok`));
