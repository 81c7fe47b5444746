/**
 * EtcdMember: installs and runs one etcd member on one host, as separate @pulumi/command remote steps with
 * explicit dependencies: prepare → (binaries, certs, config) → start (→ maintenance, after the cluster's health
 * gate). Scripts come from `scripts.ts`; the
 * unit from `flags.ts`. Members' steps do not wait for each other: a start step that changes a live cluster
 * (restart, join, leave) waits for its turn at run time (`rolling.ts`). When the member leaves the program
 * (scale-in, destroy) the engine deletes its steps in reverse: start's delete (the leave), then those of certs,
 * config and binaries, then prepare's, each removing what its step wrote (sh/uninstall.sh); the data dir, the
 * snapshots and the etcd user stay.
 */
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { invalidArgs } from "../argsError";
import * as command from "@pulumi/command";
import { EtcdHost, sshConnectionArgs } from "../hosts";
import { SnapshotsConfig } from "../config/schema";
import { EtcdOptions, resolveEtcdOptions } from "./options";
import {
    binariesRemoveScript,
    binariesScript,
    certsRemoveScript,
    certsScript,
    configRemoveScript,
    configScript,
    leaveScript,
    prepareRemoveScript,
    prepareScript,
    renderCertBundle,
    startScript,
    wrapScript,
} from "./scripts";
import { BOOTSTRAP_ENV_PATH } from "./flags";
import { maintenanceRemoveScript, maintenanceScript, restoreStepScript, restoreUploadPath, S3_AUTH_PATH, S3_CA_PATH, S3Credentials, s3CurlConfig, S3Store } from "./day2";
import { upgradeGuardShell } from "./upgrade";
import { TurnBounds } from "./rolling";
import { planMember } from "./memberPlan";

export const ETCD_MEMBER_TYPE = "etcd-ha:index:EtcdMember";

/** A certificate file pair installed on the member (`<file>.crt`, `<file>.key`). */
export interface MemberCertFile {
    /** Base name under /etc/etcd/pki: `server`, `peer`, `admin`, `healthcheck-client`. */
    file: string;
    /** Certificate (PEM). */
    certPem: pulumi.Input<string>;
    /** Private key (PEM). Must be a secret. */
    keyPem: pulumi.Input<string>;
}

/** Arguments of an EtcdMember. */
export interface EtcdMemberArgs {
    /** The host this member runs on (name, address, SSH connection). */
    host: EtcdHost;
    /** The cluster's name (shown in the unit's description). */
    clusterName: string;
    /** etcd settings (version, ports, tuning, install method), resolved with the defaults of `etcd-ha:etcd`. */
    etcd: EtcdOptions;
    /** The cluster's planned `--initial-cluster` value (used when the cluster is bootstrapped). */
    initialCluster: string;
    /** The cluster's `--initial-cluster-token` (used when the cluster is bootstrapped). */
    initialClusterToken: pulumi.Input<string>;
    /** Every member's client URL (for the etcdctl environment, and asked whether a cluster already runs). */
    clientEndpoints: string[];
    /**
     * Bounds of the wait for this member's turn to restart, join or leave a live cluster (members take turns
     * through an etcd lock at run time), and of the turn. Default: `turnBounds(clientEndpoints.length)`.
     */
    turn?: TurnBounds;
    /** Replace this member (remove, wipe, join again as a new member), re-running every step on its host. */
    replace?: boolean;
    /** The etcd CA certificate (PEM). */
    caCertPem: pulumi.Input<string>;
    /** The certificate pairs to install. */
    certs: MemberCertFile[];
    /**
     * The cluster's version check (its pre-upgrade snapshot step): the tarball push, binaries and config steps
     * wait for it, so no member receives or installs a new release, or a unit with its flags, before the
     * snapshot is taken and the version change is checked.
     */
    versionChecked?: pulumi.Resource[];
    /** Scheduled snapshots on this member (the maintenance step); unset: no maintenance step. */
    snapshots?: MemberSnapshotOptions;
    /** The S3 store's keys; required with `snapshots.s3` (they reach the member on the step's stdin only). */
    s3Credentials?: pulumi.Input<S3Credentials>;
    /**
     * The cluster's health gate. The maintenance step waits for it as well as for this member's start: snapshot
     * timers go onto a cluster that has passed its gate, and the gate does not share the hosts with them. A
     * promise when the gate is made after the members (it waits for their start steps).
     */
    healthGate?: pulumi.Input<pulumi.Resource>;
    /** A restore in this run: the member is stopped (by the cluster), restored, then started without waiting. */
    restore?: MemberRestoreOptions;
}

/**
 * Snapshot settings of a member (resolved `etcd-ha:snapshots`). An interface, not the schema's type: the
 * package schema is generated from interfaces. Kept in step with the schema by the check below.
 */
export interface MemberSnapshotOptions {
    /** Install and enable the timer; when false the script and service stay for on-demand runs. */
    enabled: boolean;
    /** systemd `OnCalendar=` expression. */
    schedule: string;
    /** `RandomizedDelaySec=` of the timer. */
    randomizedDelaySec: number;
    /** Snapshot directory. */
    dir: string;
    /** Snapshots kept (and pre-upgrade snapshots kept, counted apart). */
    retain: number;
    /** Off-host copy command ("$1" snapshot, "$2" its .sha256). */
    offHostCommand?: string;
    /** Bound on the off-host command, seconds. */
    offHostTimeoutSeconds: number;
    /** Off-host copies in an S3-compatible store, read back before they count. */
    s3?: MemberS3Options;
}

/** An S3-compatible store for off-host copies (resolved `etcd-ha:snapshots.s3`; the keys come apart, as secrets). */
export interface MemberS3Options {
    /** `https://host[:port]`. */
    endpoint: string;
    /** The bucket. */
    bucket: string;
    /** Key prefix before `<cluster>/<snapshot file>` (empty or ending in '/'). */
    prefix: string;
    /** The signing region. */
    region: string;
    /** PEM CA bundle for the store's certificate (default: the member's system CAs). */
    caPem?: string;
    /** Objects kept per member, newest first. */
    retainCount: number;
    /** Objects older than this many days go (never the newest). */
    retainDays: number;
    /** Tries per upload. */
    attempts: number;
    /** The first wait between tries, seconds (it doubles). */
    backoffSeconds: number;
    /** Bound on one request, seconds. */
    requestTimeoutSeconds: number;
    /** Bound on one run's copies, seconds. */
    budgetSeconds: number;
}
// The schema's output and this interface must describe the same settings.
const _sameShape: [(c: SnapshotsConfig) => MemberSnapshotOptions, (m: MemberSnapshotOptions) => SnapshotsConfig] = [(c) => c, (m) => m];
void _sameShape;

/** The S3 settings without the CA bundle's text (the member gets it as a file). */
function withoutCaPem(s3: MemberS3Options): Omit<MemberS3Options, "caPem"> {
    const { caPem: _caPem, ...rest } = s3;
    void _caPem;
    return rest;
}

/** What a member needs for a restore. */
export interface MemberRestoreOptions {
    /** Names the restore (markers, token). */
    id: string;
    /** The restored cluster's new token. */
    token: string;
    /** The snapshot's sha256. */
    sha256: string;
    /** A path on this machine (pushed), an http(s) URL or an `s3://bucket/key` object (downloaded by the member). */
    fromSnapshot: string;
    /** The store of an `s3://` snapshot (the keys are `s3Credentials`). */
    s3?: S3Store;
    /** Every member's stop step: none is restored before all are stopped. */
    stopped: pulumi.Resource[];
}

/** One etcd member on one host. */
export class EtcdMember extends pulumi.ComponentResource {
    /** The rendered systemd unit (no secrets). */
    public readonly unit: pulumi.Output<string>;
    /** Output of the start step ("started etcd", "nothing to do", …). */
    public readonly startOutput: pulumi.Output<string>;
    /** The last step; everything that needs a running member depends on it. */
    public readonly started: command.remote.Command;

    /**
     * @param name Logical name; steps are `${name}-prepare`, `-binaries`, `-certs`, `-config`, `-start`, `-maintenance`
     *   (`-tarball` when pushed; `-restore` and `-restore-snapshot` during a restore).
     * @param args Host, settings and certificates.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_MEMBER_TYPE, name, {}, opts);
        const resolved = resolveEtcdOptions(args.etcd);
        if (!resolved.ok) {
            invalidArgs("EtcdMember", name, resolved.issues.map((i) => ({ path: ["etcd", ...i.path].join("."), reason: i.message })), "invalid etcd settings");
        }
        const etcd = resolved.value;
        const { host } = args;
        const user = host.connection.user;
        const connection: command.types.input.remote.ConnectionArgs = sshConnectionArgs(host.connection);
        // A replacement re-runs every step: the member's host may be a new, empty machine.
        const marker = args.replace ? `# replace requested for ${host.name}\n` : "";
        const run = (step: string, body: pulumi.Input<string>, extra: Partial<command.remote.CommandArgs>, deps: pulumi.Input<pulumi.Resource>[], more: pulumi.CustomResourceOptions = {}) =>
            new command.remote.Command(
                `${name}-${step}`,
                {
                    connection,
                    create: pulumi.output(body).apply((b) => wrapScript(marker + b, String(user))),
                    addPreviousOutputInEnv: false,
                    logging: "stdoutAndStderr",
                    ...extra,
                },
                { parent: this, dependsOn: deps, ...more },
            );

        // Everything the steps need, computed once (pure, tested in memberPlan.test.ts).
        const plan = planMember({
            host,
            clusterName: args.clusterName,
            etcd,
            initialCluster: args.initialCluster,
            clientEndpoints: args.clientEndpoints,
            certFiles: args.certs.map((c) => c.file),
            turn: args.turn,
        });
        const release = plan.release;

        const hostReady = host.dependsOn ?? [];
        // Each install step's delete removes what the step wrote (wrapped like the creates, through sudo -n). The
        // program never replaces these steps; a replacement forced by hand (`pulumi up --replace`) deletes first,
        // so the old step's delete never removes what the new one has just written.
        const remove = (script: string): Partial<command.remote.CommandArgs> => ({ delete: wrapScript(script, String(user)) });
        const deleteFirst: pulumi.CustomResourceOptions = { deleteBeforeReplace: true };
        // The member's last delete: this program's state; the data dir, the snapshot dir and the etcd user stay.
        const prepare = run("prepare", prepareScript({ dataDir: plan.dataDir }), remove(prepareRemoveScript({ dataDir: plan.dataDir, snapshotDir: args.snapshots?.dir })), hostReady, deleteFirst);

        const binaryDeps: pulumi.Resource[] = [prepare, ...(args.versionChecked ?? [])];
        if (plan.source.kind === "push" && plan.pushTarball !== undefined) {
            binaryDeps.push(
                new command.remote.CopyToRemote(
                    `${name}-tarball`,
                    { connection, source: new pulumi.asset.FileAsset(plan.pushTarball), remotePath: plan.source.path, ...(args.replace ? { triggers: [`replace ${host.name}`] } : {}) },
                    // A refused version change pushes nothing either.
                    { parent: this, dependsOn: [...hostReady, ...(args.versionChecked ?? [])] },
                ),
            );
        }
        // This host's own version check, run by the binaries and config steps before they change anything.
        const guard = upgradeGuardShell(release.version);
        const binaries = run("binaries", binariesScript({ ...release, source: plan.source, guard }), remove(binariesRemoveScript()), binaryDeps, deleteFirst);

        const bundle = pulumi
            .all([args.caCertPem, ...args.certs.map((c) => pulumi.all([c.certPem, c.keyPem]))])
            .apply(([ca, ...pairs]) =>
                renderCertBundle([
                    { name: "ca.crt", content: ca as string },
                    ...(pairs as [string, string][]).flatMap(([cert, key], i) => [
                        { name: `${args.certs[i].file}.crt`, content: cert },
                        { name: `${args.certs[i].file}.key`, content: key },
                    ]),
                ]),
            );
        // Its delete removes this member's certificates and private keys (file names only in its output).
        const certs = run("certs", certsScript(plan.certFiles), { stdin: pulumi.secret(bundle), logging: "none", ...remove(certsRemoveScript(plan.certFiles)) }, [prepare], deleteFirst);

        this.unit = pulumi.output(plan.unit);
        // The unit carries the release's flags: it waits for the same version check as the binaries.
        // Its delete removes those files and the unit's environment file (the start step's; its leave removes it).
        const config = run(
            "config",
            configScript(plan.configFiles, { guard }),
            remove(configRemoveScript([...plan.configFiles.map((f) => f.path), BOOTSTRAP_ENV_PATH])),
            [prepare, ...(args.versionChecked ?? [])],
            deleteFirst,
        );

        const self = { name: plan.name, peerUrl: plan.peerUrl, clientUrl: plan.clientUrl, dataDir: plan.dataDir, clusterName: plan.clusterName, turn: plan.turn };

        // A restore: the snapshot reaches the member (pushed, or downloaded by the restore step), every
        // member is stopped (the cluster's stop steps), then this member's data dir is restored.
        // The S3 store's keys as the maintenance and restore steps receive them: on stdin, as a secret.
        const s3Stdin = args.s3Credentials === undefined ? undefined : pulumi.secret(pulumi.output(args.s3Credentials).apply(s3CurlConfig));
        let restored: command.remote.Command | undefined;
        if (args.restore) {
            const r = args.restore;
            const isUrl = /^(https?|s3):\/\//.test(r.fromSnapshot);
            const fromStore = r.fromSnapshot.startsWith("s3://");
            if (fromStore && (r.s3 === undefined || s3Stdin === undefined)) throw new Error(`${name}: restoring ${r.fromSnapshot} needs the store (restore.s3) and its keys (s3Credentials)`);
            const restoreDeps: pulumi.Resource[] = [binaries, certs, ...r.stopped];
            if (!isUrl) {
                restoreDeps.push(
                    new command.remote.CopyToRemote(
                        `${name}-restore-snapshot`,
                        { connection, source: new pulumi.asset.FileAsset(r.fromSnapshot), remotePath: restoreUploadPath(r.sha256) },
                        { parent: this, dependsOn: r.stopped },
                    ),
                );
            }
            restored = run(
                "restore",
                restoreStepScript({
                    release,
                    memberName: host.name,
                    peerUrl: self.peerUrl,
                    initialCluster: args.initialCluster,
                    token: r.token,
                    dataDir: plan.dataDir,
                    restoreId: r.id,
                    sha256: r.sha256,
                    ...(isUrl ? { url: r.fromSnapshot } : {}),
                    ...(fromStore ? { s3: r.s3 } : {}),
                }),
                // An s3:// snapshot: the store's keys on stdin only (the step's output never names them).
                fromStore ? { stdin: s3Stdin } : {},
                restoreDeps,
            );
        }

        // The public parts of the certificates etcd serves with: a renewal changes the start command, which
        // restarts etcd (the client certificates on the member need no restart).
        const served = args.certs.filter((c) => c.file === "server" || c.file === "peer");
        const certsSha256 = pulumi
            .unsecret(pulumi.all([args.caCertPem, ...served.map((c) => c.certPem)]))
            .apply((pems) => createHash("sha256").update(pems.join("\n")).digest("hex"));
        this.started = run(
            "start",
            pulumi.all([this.unit, args.initialClusterToken, certsSha256]).apply(([unit, token, certsSum]) =>
                startScript({
                    ...self,
                    unitSha256: createHash("sha256").update(unit).digest("hex"),
                    version: release.version,
                    initialCluster: plan.initialCluster,
                    token,
                    others: plan.others,
                    replace: args.replace,
                    release,
                    certsSha256: certsSum,
                    ...(args.restore ? { restoreId: args.restore.id } : {}),
                }),
            ),
            // Leaving the program: removed from the cluster through the others first (scale-in), or only stopped
            // when the cluster's teardown step has marked a destroy (every member leaves at once), then wiped.
            { delete: wrapScript(leaveScript(self), String(user)) },
            // No other member's step: members of a live cluster take turns at run time (rolling.ts).
            [binaries, certs, config, ...(restored ? [restored] : [])],
        );
        this.startOutput = this.started.stdout;

        if (args.snapshots) {
            const sn = args.snapshots;
            const s3 = sn.s3;
            if (s3 !== undefined && s3Stdin === undefined) throw new Error(`${name}: snapshots.s3 needs s3Credentials (the store's keys)`);
            run(
                "maintenance",
                maintenanceScript({
                    snapshot: {
                        clusterName: args.clusterName,
                        memberName: host.name,
                        version: release.version,
                        endpoint: self.clientUrl,
                        dir: sn.dir,
                        retain: sn.retain,
                        ...(sn.offHostCommand !== undefined ? { offHostCommand: sn.offHostCommand, offHostTimeoutSeconds: sn.offHostTimeoutSeconds } : {}),
                        // The store's settings; its CA bundle and keys as the files the step writes.
                        ...(s3 !== undefined ? { s3: { ...withoutCaPem(s3), authFile: S3_AUTH_PATH, ...(s3.caPem !== undefined ? { caFile: S3_CA_PATH } : {}) } } : {}),
                    },
                    ...(s3?.caPem !== undefined ? { s3CaPem: s3.caPem } : {}),
                    ...(sn.enabled ? { schedule: { onCalendar: sn.schedule, randomizedDelaySec: sn.randomizedDelaySec } } : {}),
                    endpoints: args.clientEndpoints,
                }),
                {
                    delete: wrapScript(maintenanceRemoveScript(), String(user)),
                    // The keys reach the member on stdin only, and its output (which never names them) is not logged.
                    ...(s3 !== undefined ? { stdin: s3Stdin, logging: "none" as const } : {}),
                },
                [this.started, ...(args.healthGate !== undefined ? [args.healthGate] : [])],
            );
        }
        this.registerOutputs({ unit: this.unit, startOutput: this.startOutput });
    }
}
