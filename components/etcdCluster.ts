/**
 * EtcdCluster: the public component that turns a set of hosts into one healthy etcd cluster: the PKI
 * (EtcdPki), one EtcdMember per host (installed in parallel), a cluster-level health gate after every
 * member has started, and the outputs consumers wire into Kubernetes and monitoring — all of which wait for
 * the gate.
 */
import * as pulumi from "@pulumi/pulumi";
import { invalidArgs } from "./argsError";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { EtcdHost, sshConnectionArgs } from "./hosts";
import { CLIENT_CERTS, memberCerts } from "./pki/certTable";
import { EtcdPki, ExistingCa } from "./pki/etcdPki";
import { EtcdMember } from "./etcd/member";
import { EtcdOptions, releaseSha256, resolveEtcdOptions } from "./etcd/options";
import { healthGateScript, wrapScript } from "./etcd/scripts";
import { teardownScripts } from "./etcd/teardown";
import { KUBEADM_ETCD_FILES, KubeEtcdFilePaths, kubeadmExternalEtcd, kubeApiserverFlags, prometheusScrapeConfig } from "./etcd/consumers";
import { membershipProblems, planTopology, TopologyPlan, url } from "./topology/planner";
import { DNS_LABEL, HOST_KEY_LINE, RestoreSchema, SnapshotsSchema } from "./config/schema";
import { restoreStopScript, S3Credentials, upgradeSnapshotScript } from "./etcd/day2";
import { isIPv4 } from "./net/ip";
import { snapshotDirProblems } from "./etcd/paths";

export const ETCD_CLUSTER_TYPE = "etcd-ha:index:EtcdCluster";

/** Health gate bounds. */
export interface HealthGateOptions {
    /** Checks before giving up. Default 120. */
    attempts?: number;
    /** Seconds between checks. Default 1. */
    intervalSeconds?: number;
    /** Overall limit in seconds. Default 300. */
    timeoutSeconds?: number;
}

/** Arguments of an EtcdCluster. */
export interface EtcdClusterArgs {
    /**
     * The machines that run the members, in member order (Proxmox VMs or existing hosts, same shape). The
     * count must be known when the program runs, so every member appears in `pulumi preview`.
     */
    hosts: EtcdHost[];
    /** `external` (dedicated etcd hosts, the default) or `stacked` (etcd on Kubernetes control-plane hosts). */
    topology?: string;
    /** etcd settings: version, ports, tuning, certificates, install method. Defaults as `etcd-ha:etcd`. */
    etcd?: EtcdOptions;
    /** Adopt this etcd CA (e.g. kubeadm's etcd/ca) instead of creating one. */
    existingCa?: ExistingCa;
    /** Where the Kubernetes control plane keeps its etcd client files. Default kubeadm's paths. */
    kubernetesFiles?: KubeEtcdFilePaths;
    /** Health gate bounds. */
    healthGate?: HealthGateOptions;
    /**
     * Members to replace in this run (at most one): the member is removed from the cluster, its data dir
     * wiped, every step re-run on its host, and it joins again as a new member with the same name and
     * address. Keep the entry until the run succeeds; remove it afterwards (removing it re-runs nothing
     * but that member's start step, which then finds the member healthy).
     */
    replace?: string[];
    /** Scheduled snapshots on every member (a systemd timer), retention and an off-host copy. Defaults as `etcd-ha:snapshots`. */
    snapshots?: SnapshotOptions;
    /**
     * The S3 store's keys, required with `snapshots.s3` (as secrets: each member receives them on its maintenance
     * step's stdin and keeps them in /etc/etcd/s3.curlrc, 0600 root).
     */
    s3Credentials?: pulumi.Input<S3Credentials>;
    /**
     * Restore the cluster from a snapshot in this run: every member is stopped, the snapshot restored on
     * each as a new cluster (new token), and the members started; the health gate then waits for quorum.
     * Remove it once the run has succeeded.
     */
    restore?: RestoreFromSnapshot;
    /**
     * Run on hosts without a pinned SSH host key (`hosts[].connection.hostKey`), accepting whatever key answers
     * at their address. Off by default: without a pinned key, private keys and certificates go to any machine
     * that takes over the address. Each run warns, naming the unpinned hosts.
     */
    insecureIgnoreHostKeys?: boolean;
}

/** Scheduled snapshots. Every field is optional; defaults are those of `etcd-ha:snapshots`. */
export interface SnapshotOptions {
    /** Install and enable the snapshot timer on every member. Default true. */
    enabled?: boolean;
    /** systemd `OnCalendar=` expression. Default every 6 hours (`*-*-* 00/6:00:00`). */
    schedule?: string;
    /** Random delay added to each run, seconds. Default 900. */
    randomizedDelaySec?: number;
    /** Snapshot directory on the members. Default `/var/backups/etcd`. */
    dir?: string;
    /** Snapshots kept per member. Default 28. */
    retain?: number;
    /** Shell command run after each verified snapshot: "$1" the snapshot, "$2" its .sha256 file. */
    offHostCommand?: string;
    /** Bound on the off-host command, seconds. Default 3600. */
    offHostTimeoutSeconds?: number;
    /** Off-host copies in an S3-compatible store, read back before they count; the keys are `s3Credentials`. */
    s3?: S3Options;
}

/** An S3-compatible store for off-host snapshot copies. Every field but endpoint and bucket is optional; defaults are those of `etcd-ha:snapshots.s3`. */
export interface S3Options {
    /** `https://host[:port]` of the store (path-style requests; https only). */
    endpoint: string;
    /** The bucket (it must exist). */
    bucket: string;
    /** Key prefix before `<cluster>/<snapshot file>`, empty or ending in '/'. Default `etcd/`. */
    prefix?: string;
    /** The signing region. Default `us-east-1`. */
    region?: string;
    /** PEM CA bundle for the store's certificate. Default: the members' system CAs. */
    caPem?: string;
    /** Objects kept per member, newest first. Default 120. */
    retainCount?: number;
    /** Objects older than this many days are deleted (never a member's newest). Default 30. */
    retainDays?: number;
    /** Tries per upload. Default 4. */
    attempts?: number;
    /** The first wait between tries, seconds; it doubles. Default 5. */
    backoffSeconds?: number;
    /** Bound on one request, seconds. Default 900. */
    requestTimeoutSeconds?: number;
    /** Bound on one run's copies, seconds (what is left goes in the next run). Default 3600. */
    budgetSeconds?: number;
}

/** A snapshot to restore the cluster from. */
export interface RestoreFromSnapshot {
    /** A path on the machine running Pulumi (pushed to every member) or an http(s) URL (downloaded by each member). */
    fromSnapshot: string;
    /** The snapshot's sha256. */
    sha256: string;
    /** Names this restore (token `<name>-restore-<id>`). Default the first 12 digits of sha256. */
    id?: string;
}

/** A member as exported. */
export interface EtcdMemberInfo {
    name: string;
    hypervisor?: string;
    address: string;
    clientUrl: string;
    peerUrl: string;
    /** Plain-HTTP metrics/health listener base URL (`/metrics`, `/health`). */
    metricsUrl: string;
    /** Stacked topology: the endpoint a kube-apiserver on this node uses (`https://127.0.0.1:2379`). */
    localClientUrl?: string;
}

/** A highly available etcd cluster on a set of hosts. */
export class EtcdCluster extends pulumi.ComponentResource {
    /** Client URLs of every member (`https://<ip>:2379`). */
    public readonly clientEndpoints: pulumi.Output<string[]>;
    /** The client URLs comma-joined, for kube-apiserver `--etcd-servers`. */
    public readonly etcdServers: pulumi.Output<string>;
    /** The etcd CA certificate (PEM), for `--etcd-cafile`; with `etcd.pki.trustedCaCerts`, the whole trust bundle. */
    public readonly caCertPem: pulumi.Output<string>;
    /** kube-apiserver's etcd client certificate (PEM), for `--etcd-certfile`. */
    public readonly apiserverClientCertPem: pulumi.Output<string>;
    /** Its private key (PEM), for `--etcd-keyfile`. Secret. */
    public readonly apiserverClientKeyPem: pulumi.Output<string>;
    /** The admin (etcdctl) client certificate (PEM). */
    public readonly adminClientCertPem: pulumi.Output<string>;
    /** Its private key (PEM). Secret. */
    public readonly adminClientKeyPem: pulumi.Output<string>;
    /** kube-apiserver flags (`--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`), one per line. */
    public readonly kubeApiserverFlags: pulumi.Output<string>;
    /** A kubeadm `ClusterConfiguration` YAML with the `etcd.external` block. */
    public readonly kubeadmEtcdExternal: pulumi.Output<string>;
    /** Metrics/health listener base URLs (`http://<ip>:2381`). */
    public readonly metricsUrls: pulumi.Output<string[]>;
    /** A Prometheus `scrape_configs` entry (YAML) for the metrics listeners. */
    public readonly prometheusScrapeConfig: pulumi.Output<string>;
    /** Members with their URLs. */
    public readonly members: pulumi.Output<EtcdMemberInfo[]>;
    /** Votes needed for a decision: floor(N/2)+1. */
    public readonly quorum: pulumi.Output<number>;
    /** Member failures the cluster survives. */
    public readonly memberFaultTolerance: pulumi.Output<number>;
    /** Hypervisor failures the cluster survives, worst case (-1 when hosts carry no hypervisor). */
    public readonly hypervisorFaultTolerance: pulumi.Output<number>;
    /** What the health gate reported (`healthy: 3/3 members …`). */
    public readonly health: pulumi.Output<string>;

    /**
     * @param name The cluster's logical name; children are `${name}-pki`, `${name}-<member>`, `${name}-token`,
     *   `${name}-upgrade-snapshot`, `${name}-health`, `${name}-teardown` (and `${name}-<member>-restore-stop` during a restore).
     * @param args Hosts and settings.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_CLUSTER_TYPE, name, {}, opts);
        const problems = validateClusterArgs(args);
        const resolved = resolveEtcdOptions(args.etcd);
        if (!resolved.ok) problems.push(...resolved.issues.map((i) => ({ path: ["etcd", ...i.path].join("."), reason: i.message })));
        const snapshotsParsed = SnapshotsSchema.safeParse(args.snapshots ?? {});
        if (!snapshotsParsed.success) problems.push(...snapshotsParsed.error.issues.map((i) => ({ path: ["snapshots", ...i.path.map(String)].join("."), reason: i.message })));
        if (resolved.ok && snapshotsParsed.success) {
            problems.push(...snapshotDirProblems(snapshotsParsed.data.dir, { dir: resolved.value.dataDir, key: "etcd.dataDir" }).map((reason) => ({ path: "snapshots.dir", reason })));
        }
        if (typeof args.restore?.fromSnapshot === "string" && args.restore.fromSnapshot.startsWith("s3://") && args.snapshots?.s3 === undefined) {
            problems.push({ path: "restore.fromSnapshot", reason: "is an s3:// object, but snapshots.s3 is not set: the members download it from that store with its keys (s3Credentials)" });
        }
        if (args.snapshots?.s3 !== undefined && args.s3Credentials === undefined) {
            problems.push({ path: "s3Credentials", reason: "is required with snapshots.s3: the store's access key ID and secret access key (etcd-ha:s3AccessKeyId and etcd-ha:s3SecretAccessKey in a stack)" });
        }
        const restoreParsed = args.restore === undefined ? undefined : RestoreSchema.safeParse(args.restore);
        if (restoreParsed && !restoreParsed.success) problems.push(...restoreParsed.error.issues.map((i) => ({ path: ["restore", ...i.path.map(String)].join("."), reason: i.message })));
        if (problems.length > 0 || !resolved.ok || !snapshotsParsed.success || (restoreParsed && !restoreParsed.success)) invalidArgs("EtcdCluster", name, problems);
        const etcd = resolved.value;
        const unpinned = args.hosts.filter((h) => h.connection.hostKey === undefined).map((h) => h.name);
        if (unpinned.length > 0) {
            void pulumi.log.warn(`SSH host keys are not checked for ${unpinned.join(", ")} (insecureIgnoreHostKeys): any machine answering at their addresses receives the cluster's private keys; pin each host's key`, this);
        }
        const snapshots = snapshotsParsed.data;
        const restore = restoreParsed?.data;
        const ports = etcd.ports;
        const topology = args.topology ?? "external";
        const plan: TopologyPlan = planTopology(
            args.hosts.map((h) => ({ name: h.name, address: h.address, hypervisor: h.hypervisor })),
            ports,
        );

        const pki = new EtcdPki(
            `${name}-pki`,
            {
                members: args.hosts.map((h) => ({ name: h.name, fqdn: h.fqdn, address: h.address })),
                ...etcd.pki,
                existingCa: args.existingCa,
            },
            { parent: this },
        );
        // The trust bundle: the signing CA, then any CA still (or already) trusted during a CA rotation.
        const caBundle = pulumi.output(pki.caCertPem).apply((ca) => [ca, ...etcd.pki.trustedCaCerts].map((c) => `${c.trim()}\n`).join(""));
        const token = new random.RandomString(`${name}-token`, { length: 16, special: false, upper: false }, { parent: this });
        const clusterToken = token.result.apply((r) => `${name}-${r}`);

        // The cluster's own steps (the pre-upgrade snapshot, the health gate) run on the first member not being
        // replaced (a replaced member's host may be a new, empty machine); the gate asks every member's endpoint,
        // so it needs no particular member's etcd.
        const replacing = new Set(args.replace ?? []);
        const gateHost = args.hosts.find((h) => !replacing.has(h.name)) ?? args.hosts[0];
        const connectionOf = (h: EtcdHost) => sshConnectionArgs(h.connection);
        // Present: resolveEtcdOptions refuses a version with neither a configured nor a pinned sha256.
        const sha256 = releaseSha256(etcd)!;
        const firstMember = plan.members.find((m) => m.name === gateHost.name)!;

        // Before any member stages or installs another release: the version change is checked and a
        // snapshot taken on the first member (nothing to do on a new cluster or an unchanged release).
        const upgradeSnapshot = new command.remote.Command(
            `${name}-upgrade-snapshot`,
            {
                connection: connectionOf(gateHost),
                create: pulumi.output(gateHost.connection.user).apply((user) =>
                    wrapScript(
                        upgradeSnapshotScript({
                            release: { version: etcd.version, sha256 },
                            dataDir: etcd.dataDir,
                            snapshot: { clusterName: name, memberName: firstMember.name, version: etcd.version, endpoint: firstMember.clientUrl, dir: snapshots.dir, retain: snapshots.retain },
                        }),
                        user,
                    ),
                ),
                addPreviousOutputInEnv: false,
                logging: "stdoutAndStderr",
            },
            { parent: this, dependsOn: gateHost.dependsOn ?? [] },
        );

        // A restore stops every member before any is restored, so none keeps serving the old cluster.
        const restoreId = restore ? restore.id ?? restore.sha256.slice(0, 12) : undefined;
        const stopped = restore
            ? args.hosts.map(
                  (h) =>
                      new command.remote.Command(
                          `${name}-${h.name}-restore-stop`,
                          {
                              connection: connectionOf(h),
                              create: pulumi.output(h.connection.user).apply((user) => wrapScript(restoreStopScript({ restoreId: restoreId!, sshUser: user }), user)),
                              addPreviousOutputInEnv: false,
                              logging: "stdoutAndStderr",
                          },
                          { parent: this, dependsOn: h.dependsOn ?? [] },
                      ),
              )
            : [];

        // Members' steps run in parallel: a new cluster's members bootstrap at once, and a start step that
        // changes a live cluster (restart, join, leave) takes its turn at run time through an etcd lock.
        // The gate waits for every member's start step; each member's maintenance step waits for the gate.
        let gateMade!: (gate: pulumi.Resource) => void;
        const healthGate = new Promise<pulumi.Resource>((resolve) => (gateMade = resolve));
        const members: EtcdMember[] = [];
        for (const host of args.hosts) {
            members.push(
                new EtcdMember(
                    `${name}-${host.name}`,
                    {
                        host,
                        clusterName: name,
                        etcd,
                        initialCluster: plan.initialCluster,
                        initialClusterToken: clusterToken,
                        clientEndpoints: plan.clientEndpoints,
                        caCertPem: caBundle,
                        certs: memberCerts(pki.table, host.name).map((c) => ({ file: c.memberFile!, ...pki.pair(c.id) })),
                        replace: (args.replace ?? []).includes(host.name),
                        versionChecked: [upgradeSnapshot],
                        snapshots,
                        ...(args.s3Credentials !== undefined ? { s3Credentials: args.s3Credentials } : {}),
                        healthGate,
                        ...(restore
                            ? {
                                  restore: {
                                      id: restoreId!,
                                      token: `${name}-restore-${restoreId}`,
                                      sha256: restore.sha256,
                                      fromSnapshot: restore.fromSnapshot,
                                      stopped,
                                      ...(snapshots.s3 !== undefined ? { s3: { endpoint: snapshots.s3.endpoint, region: snapshots.s3.region, ...(snapshots.s3.caPem !== undefined ? { caPem: snapshots.s3.caPem } : {}) } } : {}),
                                  },
                              }
                            : {}),
                    },
                    { parent: this },
                ),
            );
        }

        const gate = new command.remote.Command(
            `${name}-health`,
            {
                connection: connectionOf(gateHost),
                create: pulumi.output(gateHost.connection.user).apply((user) =>
                    wrapScript(
                        healthGateScript({
                            members: plan.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, peerUrl: m.peerUrl })),
                            attempts: args.healthGate?.attempts ?? 120,
                            intervalSeconds: args.healthGate?.intervalSeconds ?? 1,
                            timeoutSeconds: args.healthGate?.timeoutSeconds ?? 300,
                            // A new release or a restore re-runs the gate once every member has started.
                            after: [`etcd ${etcd.version} (tarball sha256 ${sha256})`, ...(restoreId ? [`restore ${restoreId}`] : [])],
                        }),
                        user,
                    ),
                ),
                addPreviousOutputInEnv: false,
                logging: "stdoutAndStderr",
            },
            { parent: this, dependsOn: members.map((m) => m.started) },
        );
        gateMade(gate);
        this.health = gate.stdout;

        // On destroy, before any member leaves (it depends on every start step): marks the whole cluster as
        // being destroyed, so each member's leave just stops and wipes it instead of removing it through the
        // others in turns (which all leave at once). Its create clears the marker, after the gate (it has no
        // part in a bootstrap). Never replaced: no triggers, and a forced replacement deletes first (see
        // etcd/teardown.ts). On the gate's member.
        const teardown = teardownScripts({ clusterName: name, endpoints: plan.clientEndpoints, clearWaitSeconds: args.healthGate?.timeoutSeconds ?? 300 });
        new command.remote.Command(
            `${name}-teardown`,
            {
                connection: connectionOf(gateHost),
                create: pulumi.output(gateHost.connection.user).apply((user) => wrapScript(teardown.create, user)),
                delete: pulumi.output(gateHost.connection.user).apply((user) => wrapScript(teardown.delete, user)),
                addPreviousOutputInEnv: false,
                logging: "stdoutAndStderr",
            },
            { parent: this, dependsOn: [...members.map((m) => m.started), gate], deleteBeforeReplace: true },
        );
        /**
         * Values consumers use wait for the gate: they resolve only once the engine has answered the gate's
         * registration, which during `up` is after its step ran, and they carry the gate as a dependency (a
         * resource given one depends on the gate). Gated on the URN, not on stdout: the URN is known in
         * `pulumi preview`, so values that follow from config (endpoints, flags, kubeadm and Prometheus
         * YAML, members) show in a preview; stdout is unknown there until the gate has run once.
         */
        const gated = <T>(value: pulumi.Input<T>): pulumi.Output<T> => pulumi.all([gate.urn, value]).apply(([, v]) => v as T);

        const files = args.kubernetesFiles ?? KUBEADM_ETCD_FILES;
        const localUrl = url("https", "127.0.0.1", ports.client);
        const apiserverEndpoints = topology === "stacked" && etcd.listenLocalhost ? [localUrl] : plan.clientEndpoints;
        const apiserver = pki.pair(CLIENT_CERTS.apiserver.id);
        const admin = pki.pair(CLIENT_CERTS.admin.id);

        this.clientEndpoints = gated(plan.clientEndpoints);
        this.etcdServers = gated(plan.clientEndpoints.join(","));
        this.caCertPem = gated(caBundle);
        this.apiserverClientCertPem = gated(apiserver.certPem);
        this.apiserverClientKeyPem = pulumi.secret(gated(apiserver.keyPem));
        this.adminClientCertPem = gated(admin.certPem);
        this.adminClientKeyPem = pulumi.secret(gated(admin.keyPem));
        this.kubeApiserverFlags = gated(kubeApiserverFlags(apiserverEndpoints, files));
        this.kubeadmEtcdExternal = gated(kubeadmExternalEtcd(plan.clientEndpoints, files));
        this.metricsUrls = gated(plan.members.map((m) => m.metricsUrl));
        this.prometheusScrapeConfig = gated(
            prometheusScrapeConfig(
                name,
                plan.members.map((m) => ({ member: m.name, target: `${m.address}:${ports.metrics}` })),
            ),
        );
        this.members = gated(
            plan.members.map((m) => ({
                name: m.name,
                ...(m.hypervisor !== undefined ? { hypervisor: m.hypervisor } : {}),
                address: m.address,
                clientUrl: m.clientUrl,
                peerUrl: m.peerUrl,
                metricsUrl: m.metricsUrl,
                ...(topology === "stacked" && etcd.listenLocalhost ? { localClientUrl: localUrl } : {}),
            })),
        );
        this.quorum = pulumi.output(plan.quorum);
        this.memberFaultTolerance = pulumi.output(plan.faultTolerance.members);
        this.hypervisorFaultTolerance = pulumi.output(plan.faultTolerance.hypervisors ?? -1);
        this.registerOutputs({
            clientEndpoints: this.clientEndpoints,
            etcdServers: this.etcdServers,
            caCertPem: this.caCertPem,
            apiserverClientCertPem: this.apiserverClientCertPem,
            apiserverClientKeyPem: this.apiserverClientKeyPem,
            adminClientCertPem: this.adminClientCertPem,
            adminClientKeyPem: this.adminClientKeyPem,
            kubeApiserverFlags: this.kubeApiserverFlags,
            kubeadmEtcdExternal: this.kubeadmEtcdExternal,
            metricsUrls: this.metricsUrls,
            prometheusScrapeConfig: this.prometheusScrapeConfig,
            members: this.members,
            quorum: this.quorum,
            memberFaultTolerance: this.memberFaultTolerance,
            hypervisorFaultTolerance: this.hypervisorFaultTolerance,
            health: this.health,
        });
    }
}

/** Problems with EtcdCluster host/topology arguments (every one, not only the first). Exported for tests. */
export function validateClusterArgs(args: EtcdClusterArgs): { path: string; reason: string }[] {
    const out: { path: string; reason: string }[] = [];
    if (!args.hosts || args.hosts.length === 0) out.push({ path: "hosts", reason: "at least one host is required (3 or 5 for HA)" });
    const seenName = new Map<string, number>();
    const seenAddr = new Map<string, number>();
    (args.hosts ?? []).forEach((h, i) => {
        if (!DNS_LABEL.test(h.name)) out.push({ path: `hosts[${i}].name`, reason: `"${h.name}" is not a DNS label (lower-case letters, digits, '-')` });
        if (seenName.has(h.name)) out.push({ path: `hosts[${i}].name`, reason: `"${h.name}" is already used by hosts[${seenName.get(h.name)}]` });
        else seenName.set(h.name, i);
        if (!isIPv4(h.address)) {
            out.push({ path: `hosts[${i}].address`, reason: `"${h.address}" is not an IPv4 address` });
        }
        if (seenAddr.has(h.address)) out.push({ path: `hosts[${i}].address`, reason: `${h.address} is already used by hosts[${seenAddr.get(h.address)}]` });
        else seenAddr.set(h.address, i);
        if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(h.fqdn)) out.push({ path: `hosts[${i}].fqdn`, reason: `"${h.fqdn}" is not a DNS name` });
        const key = h.connection?.hostKey;
        if (key === undefined && !args.insecureIgnoreHostKeys) {
            out.push({
                path: `hosts[${i}].connection.hostKey`,
                reason: `is required: the public SSH host key of ${h.name} (${h.address}), one line such as "ssh-ed25519 AAAA…" read from the host itself (cat /etc/ssh/ssh_host_ed25519_key.pub); or set insecureIgnoreHostKeys: true to accept any key (not recommended)`,
            });
        } else if (typeof key === "string" && !HOST_KEY_LINE.test(key)) {
            out.push({ path: `hosts[${i}].connection.hostKey`, reason: `is not an OpenSSH public key line such as "ssh-ed25519 AAAA…" (got "${key.length > 40 ? key.slice(0, 37) + "..." : key}")` });
        }
    });
    if (args.restore !== undefined && (args.replace ?? []).length > 0) {
        out.push({ path: "restore", reason: "cannot run together with replace: a restore rebuilds every member; remove replace (or finish the replacement first)" });
    }
    if (args.topology !== undefined && args.topology !== "external" && args.topology !== "stacked") {
        out.push({ path: "topology", reason: `must be "external" or "stacked" (got "${args.topology}")` });
    }
    for (const p of membershipProblems((args.hosts ?? []).map((h) => h.name), args.replace ?? [])) {
        out.push({ path: p.key === "members" ? "hosts" : p.index === undefined ? "replace" : `replace[${p.index}]`, reason: p.message });
    }
    const g = args.healthGate ?? {};
    for (const [k, v, max] of [["attempts", g.attempts, 1000], ["intervalSeconds", g.intervalSeconds, 60], ["timeoutSeconds", g.timeoutSeconds, 3600]] as const) {
        if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > max)) out.push({ path: `healthGate.${k}`, reason: `must be an integer from 1 to ${max}` });
    }
    return out;
}
