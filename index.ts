/**
 * The etcd-ha program: the only reader of stack config. Validates every `etcd-ha:*` key up front (all
 * problems in one error, before any resource is created), then builds the hosts (Proxmox VMs or existing
 * machines) and the EtcdCluster on them, and exports what consumers need.
 *
 * The program is an exported function (which the Pulumi language host calls and whose result becomes the
 * stack outputs), so test harnesses can run it repeatedly in one process.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigValidationError, loadStackConfig, ResolvedConfig } from "./components/config/validate";
import { EtcdCluster, EtcdMemberInfo } from "./components/etcdCluster";
import { EtcdHost } from "./components/hosts";
import { PlanWarning } from "./components/topology/planner";
import { ProxmoxHosts, ProxmoxNodeInfo } from "./components/proxmox/proxmoxHosts";

/**
 * Stack outputs. Those that follow from config (topology, members, endpoints, flags, kubeadm and Prometheus
 * YAML, quorum, fault tolerance, warnings, VMs) are known in `pulumi preview`, even of a new stack; the
 * certificates, keys and `health` come from resources and are unknown until those exist.
 */
interface StackOutputs {
    /** `external` or `stacked`. */
    topology: string;
    /** Members: name, hypervisor, address, client, peer and metrics URLs (and the local URL when stacked). */
    members: pulumi.Output<EtcdMemberInfo[]>;
    /** Client URLs (`https://<ip>:2379`). */
    clientEndpoints: pulumi.Output<string[]>;
    /** For kube-apiserver `--etcd-servers`. */
    etcdServers: pulumi.Output<string>;
    /** The etcd CA certificate (PEM). */
    caCertPem: pulumi.Output<string>;
    /** kube-apiserver's etcd client certificate (PEM). */
    apiserverClientCertPem: pulumi.Output<string>;
    /** Its key (PEM). Secret. */
    apiserverClientKeyPem: pulumi.Output<string>;
    /** The admin (etcdctl) client certificate (PEM). */
    adminClientCertPem: pulumi.Output<string>;
    /** Its key (PEM). Secret. */
    adminClientKeyPem: pulumi.Output<string>;
    /** kube-apiserver flags, one per line. */
    kubeApiserverFlags: pulumi.Output<string>;
    /** kubeadm ClusterConfiguration with the etcd.external block (YAML). */
    kubeadmEtcdExternal: pulumi.Output<string>;
    /** Metrics/health listener URLs. */
    metricsUrls: pulumi.Output<string[]>;
    /** Prometheus scrape config (YAML). */
    prometheusScrapeConfig: pulumi.Output<string>;
    /** Votes needed for a decision. */
    quorum: pulumi.Output<number>;
    /** Failures survived: members, and hypervisors (worst case; null without hypervisors). */
    faultTolerance: pulumi.Output<{ members: number; hypervisors: number | null }>;
    /** What the health gate reported. */
    health: pulumi.Output<string>;
    /** Layout warnings (code and message). */
    warnings: PlanWarning[];
    /** Proxmox mode: the VMs (name, FQDN, address, hypervisor, vmId, role, SSH user), once ready. */
    vms?: pulumi.Output<ProxmoxNodeInfo[]>;
    /** Stacked topology on Proxmox: the control-plane VMs, for the stack that installs Kubernetes. */
    controlPlaneNodes?: pulumi.Output<ProxmoxNodeInfo[]>;
}

/**
 * The config's problems as a Pulumi RunError (same name, message and `issues` as ConfigValidationError): the
 * engine shows the message — every problem, each with its key — without a stack trace, which says nothing to
 * an operator. It carries no frames either: the Node.js runtime formats every uncaught error with
 * `util.inspect` for its trace span, and with this program loaded, formatting the frames took 40-70 s
 * (measured on 2 cores, nearly all garbage collection); without them the failed preview ends in seconds.
 */
class StackConfigError extends pulumi.RunError {
    readonly issues: ConfigValidationError["issues"];
    constructor(e: ConfigValidationError) {
        super(e.message);
        this.name = e.name;
        this.issues = e.issues;
        this.stack = `${e.name}: ${e.message}`;
    }
}

/** The validated stack config (or every problem in one StackConfigError). */
function stackConfig(): ResolvedConfig {
    try {
        return loadStackConfig(pulumi.runtime.allConfig());
    } catch (e) {
        if (e instanceof ConfigValidationError) throw new StackConfigError(e);
        throw e;
    }
}

export = async (): Promise<StackOutputs> => {
    const cfg = stackConfig();
    const config = new pulumi.Config();
    const sshPrivateKey = config.requireSecret("sshPrivateKey");
    const caCert = config.getSecret("etcdCaCert");
    const caKey = config.getSecret("etcdCaKey");

    for (const w of cfg.warnings) {
        void pulumi.log.warn(`${w.message} [${w.code}]`);
    }

    // Proxmox mode: the VMs come from the Proxmox layer; hosts mode: the listed machines. Same shape either way.
    let hosts: EtcdHost[];
    let nodes: pulumi.Output<ProxmoxNodeInfo[]> | undefined;
    if (cfg.mode === "proxmox") {
        const px = cfg.proxmox!;
        const infra = new ProxmoxHosts(`${cfg.clusterName}-vms`, {
            clusterName: cfg.clusterName,
            topology: cfg.topology,
            proxmox: {
                endpoint: px.endpoint,
                insecure: px.insecure,
                clustered: px.clustered,
                sshUsername: px.ssh.username,
                sshAgent: px.ssh.agent,
                ha: { enabled: px.haEnabled, pveMajor: px.ha.pveMajor },
                image: px.image,
                cpuType: px.cpuType,
                readyTimeoutSeconds: px.readyTimeoutSeconds,
                firewall: px.firewall,
            },
            hypervisors: cfg.hypervisors,
            network: { ...cfg.network!, gateway: cfg.network!.gateway! },
            members: cfg.members.map((m) => ({
                name: m.name,
                fqdn: m.fqdn,
                address: m.address,
                hypervisor: m.hypervisor!,
                vmId: m.vmId!,
                size: m.size!,
                ...(m.hostKey !== undefined ? { hostKey: m.hostKey } : {}),
            })),
            admin: { user: cfg.ssh.user, publicKey: cfg.ssh.publicKey! },
            ports: cfg.etcd.ports,
            apiToken: config.requireSecret("proxmoxApiToken"),
            hypervisorSshPrivateKey: px.ssh.agent ? undefined : config.requireSecret("proxmoxSshPrivateKey"),
            memberSshPrivateKey: sshPrivateKey,
        });
        hosts = infra.hosts;
        nodes = infra.nodes;
    } else {
        hosts = cfg.members.map((m) => ({
            name: m.name,
            fqdn: m.fqdn,
            address: m.address,
            hypervisor: m.hypervisor,
            connection: { host: m.address, port: m.sshPort, user: m.sshUser, privateKey: sshPrivateKey, ...(m.hostKey !== undefined ? { hostKey: m.hostKey } : {}) },
        }));
    }

    const cluster = new EtcdCluster(cfg.clusterName, {
        hosts,
        topology: cfg.topology,
        etcd: cfg.etcd,
        replace: cfg.replace,
        snapshots: cfg.snapshots,
        ...(cfg.snapshots.s3 !== undefined ? { s3Credentials: pulumi.all([config.requireSecret("s3AccessKeyId"), config.requireSecret("s3SecretAccessKey")]).apply(([accessKeyId, secretAccessKey]) => ({ accessKeyId, secretAccessKey })) } : {}),
        insecureIgnoreHostKeys: cfg.ssh.insecureIgnoreHostKeys,
        ...(cfg.restore ? { restore: cfg.restore } : {}),
        ...(caCert && caKey ? { existingCa: { certPem: caCert, keyPem: caKey } } : {}),
    });

    return {
        topology: cfg.topology,
        members: cluster.members,
        clientEndpoints: cluster.clientEndpoints,
        etcdServers: cluster.etcdServers,
        caCertPem: cluster.caCertPem,
        apiserverClientCertPem: cluster.apiserverClientCertPem,
        apiserverClientKeyPem: cluster.apiserverClientKeyPem,
        adminClientCertPem: cluster.adminClientCertPem,
        adminClientKeyPem: cluster.adminClientKeyPem,
        kubeApiserverFlags: cluster.kubeApiserverFlags,
        kubeadmEtcdExternal: cluster.kubeadmEtcdExternal,
        metricsUrls: cluster.metricsUrls,
        prometheusScrapeConfig: cluster.prometheusScrapeConfig,
        quorum: cluster.quorum,
        faultTolerance: pulumi
            .all([cluster.memberFaultTolerance, cluster.hypervisorFaultTolerance])
            .apply(([m, h]) => ({ members: m, hypervisors: h < 0 ? null : h })),
        health: cluster.health,
        warnings: cfg.warnings,
        ...(nodes ? { vms: nodes } : {}),
        ...(nodes && cfg.topology === "stacked" ? { controlPlaneNodes: nodes } : {}),
    };
};
