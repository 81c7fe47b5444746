/**
 * The per-member plan: everything one member's steps need, computed once from the cluster's settings by a pure
 * function (version facts, the release and where its binaries come from, URLs, paths, the files the config and
 * certs steps write, the turn bounds). EtcdMember renders its scripts from it; tests assert on it directly.
 */
import { renderUnit } from "./flags";
import { EtcdConfig } from "../config/schema";
import { releaseSha256, tuningOf } from "./options";
import { EtcdArch } from "./releases";
import { TurnBounds, turnBounds } from "./rolling";
import {
    BinarySource,
    ETCDCTL_ENV_PATH,
    ETCDCTL_WRAPPER_PATH,
    EtcdRelease,
    ManagedFile,
    renderEtcdctlEnv,
    renderEtcdctlWrapper,
    stagedTarballPath,
} from "./scripts";
import { UNIT_PATH } from "./flags";
import { downloadUrl, versionFeatures, VersionFeatures } from "./version";
import { url } from "../topology/planner";

/** What the plan is computed from. */
export interface MemberPlanInput {
    /** The member's name and address. */
    host: { name: string; address: string };
    /** The cluster's name. */
    clusterName: string;
    /** Resolved etcd settings. */
    etcd: EtcdConfig;
    /** The planned `--initial-cluster`. */
    initialCluster: string;
    /** Every planned member's client URL. */
    clientEndpoints: readonly string[];
    /** Base names of the certificate pairs installed on the member (`server`, `peer`, `admin`, …). */
    certFiles: readonly string[];
    /** Bounds of the member's turns; default `turnBounds(clientEndpoints.length)`. */
    turn?: TurnBounds;
}

/** One member's plan. */
export interface MemberPlan {
    name: string;
    address: string;
    clusterName: string;
    /** The release (version and tarball sha256) and its architecture. */
    release: EtcdRelease & { arch: EtcdArch };
    /** What the release's version changes (etcdutl, flags, …). */
    features: VersionFeatures;
    /** Where the binaries step gets the tarball: downloaded, or pushed to the staging path first. */
    source: BinarySource;
    /** The operator's local tarball, pushed to `source.path` (push installs only). */
    pushTarball?: string;
    peerUrl: string;
    clientUrl: string;
    /** The other planned members' client URLs. */
    others: string[];
    /** Every planned member's client URL. */
    endpoints: string[];
    dataDir: string;
    initialCluster: string;
    turn: TurnBounds;
    /** The rendered systemd unit (no secrets). */
    unit: string;
    /** The files the config step writes: the unit, the etcdctl environment and its wrapper. */
    configFiles: ManagedFile[];
    /** The files the certs step installs, with their modes (keys 0600). */
    certFiles: { name: string; mode: string }[];
}

/**
 * Plans one member. Throws, naming the setting, when the release has no sha256 or a pushed install has no
 * tarball (the cluster's argument check reports these first).
 */
export function planMember(i: MemberPlanInput): MemberPlan {
    const { etcd, host } = i;
    const arch = etcd.install.arch;
    const sha256 = releaseSha256(etcd);
    if (sha256 === undefined) throw new Error(`member ${host.name}: no sha256 for etcd ${etcd.version} (${arch}); set etcd.install.sha256`);
    let source: BinarySource;
    let pushTarball: string | undefined;
    if (etcd.install.method === "push") {
        pushTarball = etcd.install.tarball;
        if (pushTarball === undefined) throw new Error(`member ${host.name}: etcd.install.tarball is required with install.method push`);
        source = { kind: "push", path: stagedTarballPath(etcd.version, arch) };
    } else {
        source = { kind: "download", url: downloadUrl(etcd.version, arch, etcd.install.baseUrl) };
    }
    const clientUrl = url("https", host.address, etcd.ports.client);
    const unit = renderUnit({
        clusterName: i.clusterName,
        arch,
        version: etcd.version,
        name: host.name,
        address: host.address,
        ports: etcd.ports,
        dataDir: etcd.dataDir,
        ...tuningOf(etcd),
    });
    return {
        name: host.name,
        address: host.address,
        clusterName: i.clusterName,
        release: { version: etcd.version, sha256, arch },
        features: versionFeatures(etcd.version),
        source,
        ...(pushTarball !== undefined ? { pushTarball } : {}),
        peerUrl: url("https", host.address, etcd.ports.peer),
        clientUrl,
        others: i.clientEndpoints.filter((e) => e !== clientUrl),
        endpoints: [...i.clientEndpoints],
        dataDir: etcd.dataDir,
        initialCluster: i.initialCluster,
        turn: i.turn ?? turnBounds(i.clientEndpoints.length),
        unit,
        configFiles: [
            { path: UNIT_PATH, mode: "0600", owner: "root:root", content: unit },
            { path: ETCDCTL_ENV_PATH, mode: "0644", owner: "root:root", content: renderEtcdctlEnv({ endpoints: i.clientEndpoints }) },
            { path: ETCDCTL_WRAPPER_PATH, mode: "0755", owner: "root:root", content: renderEtcdctlWrapper() },
        ],
        certFiles: [
            { name: "ca.crt", mode: "0644" },
            ...i.certFiles.flatMap((f) => [
                { name: `${f}.crt`, mode: "0644" },
                { name: `${f}.key`, mode: "0600" },
            ]),
        ],
    };
}
