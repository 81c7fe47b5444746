/**
 * The lab: `up` (hosts, the air-gapped tarball, the lab stack, then the program itself under the engine
 * stand-in), `status` (the JSON contract), `down` (everything the lab started, by PID, and its files).
 */
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { SECRET_KEYS } from "../../components/config/schema";
import { RecordedResource, runProgram } from "../engine/mockHost";
import { readProject, readStackFile } from "../engine/stackFile";
import { LabEngine, registrationFrom, StateResource, StepRecord, keyOf } from "./engine/labEngine";
import { removeChain } from "./faults/partition";
import { SecretBox } from "./engine/secrets";
import {
    ADMIN_USER,
    DEFAULT_PREFIX,
    HOST_PORTS,
    LabHost,
    LabRecord,
    MAX_HOSTS,
    PROJECT_ROOT,
    alive,
    checkRangeFree,
    createHost,
    ensureRootfs,
    inHost,
    initPid,
    labDir,
    machinePid,
    powerOff,
    powerOn,
    preflight,
    readHostKey,
    readLab,
    stopHosts,
    tryInHost,
    waitBooted,
    writeLab,
} from "./hosts";
import { etcdBuild } from "./etcdBuild";

export const PROGRAM = path.join(PROJECT_ROOT, "index.ts");
export const CLUSTER_NAME = "etcd";

/** Paths inside the lab dir. */
export function labPaths(dir = labDir()) {
    return {
        dir,
        sshKey: path.join(dir, "ssh", "id_ed25519"),
        stackFile: path.join(dir, "Pulumi.lab.yaml"),
        state: path.join(dir, "state.json"),
        secretsKey: path.join(dir, "secrets.key"),
        log: path.join(dir, "lab.log"),
        client: { cacert: path.join(dir, "client", "ca.crt"), cert: path.join(dir, "client", "admin.crt"), key: path.join(dir, "client", "admin.key") },
    };
}

/** The etcd version of Debian's binaries (`etcd --version`). */
export function debianEtcdVersion(): string {
    const out = execFileSync("etcd", ["--version"], { encoding: "utf8" });
    const m = /^etcd Version: (\d+\.\d+\.\d+)$/m.exec(out);
    if (!m) throw new Error(`cannot read the etcd version from \`etcd --version\`:\n${out}`);
    return m[1];
}

/** The release a new lab runs: the production default line, built from the Go module proxy. */
export const DEFAULT_RELEASE = "3.5";

/**
 * The binaries of a lab release: `3.4` (or Debian's exact version) is Debian's etcd and etcdctl from this
 * machine; any other line (`3.5`, `3.6`: the newest patch) or version (`3.5.36`) is built from the Go module
 * proxy by tools/etcd-build.sh (cached after the first build).
 */
export function releaseBinaries(release: string): { version: string; files: string[]; origin: string; tarball?: string } {
    if (!/^3\.\d+(\.\d+)?$/.test(release)) throw new Error(`--version must be a minor line (3.5) or a version (3.5.36), got ${release}`);
    const debian = debianEtcdVersion();
    if (release === "3.4" || release === debian) {
        return { version: debian, files: ["etcd", "etcdctl"].map((b) => execFileSync("sh", ["-c", `command -v ${b}`], { encoding: "utf8" }).trim()), origin: "Debian's etcd package" };
    }
    const [version, tarball] = etcdBuild(release, 3);
    return { version, files: ["etcd", "etcdctl", "etcdutl"].map((b) => path.join(path.dirname(tarball), "bin", b)), origin: "the Go module proxy (tools/etcd-build.sh)", tarball };
}

/**
 * Packs a lab release's binaries (releaseBinaries) into a release-layout tarball
 * (`etcd-v<v>-linux-amd64/{etcd,etcdctl[,etcdutl]}`) in the lab dir, reproducibly (sorted, owner 0, mtime 0,
 * gzip -n), and returns its path and sha256: the program's air-gapped install path then verifies and installs
 * it exactly as it would an upstream release. `build` marks a repack of the same binaries (another sha256: a
 * same-version upgrade).
 */
export function packTarball(dir: string, release: string, build?: string): { version: string; tarball: string; sha256: string } {
    if (build !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(build)) throw new Error(`--build must be 1-64 of [A-Za-z0-9._-], got ${build}`);
    const { version, files, origin, tarball: built } = releaseBinaries(release);
    if (built !== undefined && build === undefined) {
        // The build's own tarball (already in the release layout, reproducible, with its .sha256).
        return { version, tarball: built, sha256: fs.readFileSync(`${built}.sha256`, "utf8").split(" ")[0] };
    }
    const top = `etcd-v${version}-linux-amd64`;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-tar-"));
    try {
        fs.mkdirSync(path.join(work, top));
        for (const src of files) {
            fs.copyFileSync(src, path.join(work, top, path.basename(src)));
            fs.chmodSync(path.join(work, top, path.basename(src)), 0o755);
        }
        fs.writeFileSync(
            path.join(work, top, "README-etcd-ha-lab.txt"),
            `etcd ${version} binaries from ${origin}, packed by the etcd-ha lab in the upstream release layout.\n${build ? `Build ${build}: the same binaries as another tarball, for a same-version upgrade.\n` : ""}`,
        );
        const tarball = path.join(dir, build ? `${top}-${build}.tar.gz` : `${top}.tar.gz`);
        execFileSync("sh", ["-c", `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf - "$2" | gzip -n > "$3"`, "sh", work, top, tarball]);
        const sha256 = createHash("sha256").update(fs.readFileSync(tarball)).digest("hex");
        fs.writeFileSync(`${tarball}.sha256`, `${sha256}  ${path.basename(tarball)}\n`);
        return { version, tarball, sha256 };
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

/** The lab stack: `hosts` mode on the lab hosts, with the two settings a shared network stack needs. */
export function renderLabStack(opts: {
    hosts: readonly { name: string; address: string; hostKey: string }[];
    version: string;
    tarball: string;
    sha256: string;
    replace?: readonly string[];
    snapshots?: Record<string, unknown>;
    restore?: { fromSnapshot: string; sha256: string; id?: string };
}): string {
    const doc = {
        config: {
            "etcd-ha:clusterName": CLUSTER_NAME,
            "etcd-ha:topology": "external",
            "etcd-ha:hosts": opts.hosts.map((h) => ({ name: h.name, address: h.address, hostKey: h.hostKey })),
            "etcd-ha:ssh": { user: ADMIN_USER },
            "etcd-ha:etcd": {
                version: opts.version,
                listenLocalhost: false,
                pki: { peerCertSans: ["localhost"] },
                install: { method: "push", tarball: opts.tarball, sha256: opts.sha256 },
            },
            ...(opts.replace && opts.replace.length > 0 ? { "etcd-ha:replace": [...opts.replace] } : {}),
            ...(opts.snapshots ? { "etcd-ha:snapshots": opts.snapshots } : {}),
            ...(opts.restore ? { "etcd-ha:restore": opts.restore } : {}),
        },
    };
    return [
        "# The lab stack, written by `npm run lab -- up`: hosts mode on the lab hosts (127.x loopback addresses,",
        "# an nspawn machine with real systemd and its own sshd each). It differs from a production stack in exactly two settings, both",
        "# because every lab host shares this machine's one network stack:",
        "#   etcd.listenLocalhost: false      no member may also listen on 127.0.0.1 (they would collide);",
        "#   etcd.pki.peerCertSans: [localhost]  peers dial from 127.0.0.1, which etcd checks by reverse lookup.",
        "# etcd arrives by the air-gapped path (install.method push): a release-layout tarball (3.5/3.6 built from the Go",
        "# module proxy by tools/etcd-build.sh, or Debian's 3.4 binaries packed by the lab).",
        "# etcd-ha:sshPrivateKey (secret) is the lab's key, .lab/ssh/id_ed25519, set by the lab at run time. Each host's",
        "# hostKey is its public SSH host key, read inside the host when it was created (lab.json), never over SSH.",
        YAML.stringify(doc, { lineWidth: 0 }).trimEnd(),
        "",
    ].join("\n");
}

/** The lab state file: every resource's inputs and outputs, secrets sealed (never plain text). */
interface StateFile {
    version: 1;
    project: string;
    stack: string;
    updatedAt: string;
    resources: (StateResource & { urn: string; parent: string; dependencies: string[] })[];
    /** Resources to delete that a run left undone (it failed first); the next run deletes them. */
    pendingDeletes?: StateResource[];
    outputs: Record<string, unknown>;
}

function openResource(box: SecretBox, r: StateResource): StateResource {
    return { ...r, inputs: box.open(r.inputs) as Record<string, unknown>, outputs: box.open(r.outputs) as Record<string, unknown> };
}

function sealResource<T extends StateResource>(box: SecretBox, r: T): T {
    return { ...r, inputs: box.seal(r.inputs) as Record<string, unknown>, outputs: box.seal(r.outputs) as Record<string, unknown> };
}

function loadState(file: string, box: SecretBox): { resources: Map<string, StateResource>; pendingDeletes: StateResource[]; parents: Map<string, string> } | undefined {
    if (!fs.existsSync(file)) return undefined;
    const s = JSON.parse(fs.readFileSync(file, "utf8")) as StateFile;
    const resources = new Map<string, StateResource>();
    const parents = new Map<string, string>();
    for (const r of s.resources) {
        resources.set(keyOf(r.type, r.name), openResource(box, r));
        parents.set(keyOf(r.type, r.name), r.parent);
    }
    return { resources, pendingDeletes: (s.pendingDeletes ?? []).map((r) => openResource(box, r)), parents };
}

export interface UpOptions {
    members?: number;
    prefix?: string;
    /** Run every command's create again on a live lab (idempotency proof). */
    rerunCommands?: boolean;
    /** Progress sink (default stdout). */
    print?: (line: string) => void;
    /** The clock the certificate renewal check reads (tests move it forward). */
    now?: () => number;
    /** Members to replace in this run (`etcd-ha:replace`). */
    replace?: string[];
    /** `etcd-ha:snapshots` for this run. */
    snapshots?: Record<string, unknown>;
    /** `etcd-ha:restore` for this run. */
    restore?: { fromSnapshot: string; sha256: string; id?: string };
    /**
     * The etcd release to run (`3.4`: Debian's; `3.5`, `3.6` or an exact version: built from the Go module
     * proxy). Default: what the lab ran last, else DEFAULT_RELEASE. On a live lab another release is an upgrade.
     */
    version?: string;
    /**
     * Pack the tarball as this build (same binaries, another sha256): a same-version "upgrade" that runs the
     * pre-upgrade snapshot and the rolling install and restart.
     */
    build?: string;
}

/**
 * A lab host lost and rebuilt, as when a member's VM is recreated: the host loses power (every process
 * killed at once, its etcd with it), its files and disk are discarded, and an empty host boots with the
 * same name and address.
 */
export async function recreateHost(name: string, opts: { trustNewKey?: boolean } = {}): Promise<LabHost> {
    const p = labPaths();
    const lab = readLab();
    const old = lab?.hosts.find((h) => h.name === name);
    if (!lab || !old) throw new Error(`no lab host ${name}`);
    // The VM is lost, not shut down: its etcd gets no chance to hand over leadership or close its files.
    await stopHosts([old], "cut");
    fs.rmSync(old.dir, { recursive: true, force: true });
    const fresh = await createHost({ dir: p.dir, index: old.index, prefix: lab.prefix, pubkeyFile: `${p.sshKey}.pub`, rootfs: lab.rootfs });
    // The operator checks the new VM's key and trusts it (default); `trustNewKey: false` keeps trusting the
    // old one, as when a machine that is not ours took the address.
    if (opts.trustNewKey === false) fresh.hostKey = old.hostKey;
    lab.hosts = lab.hosts.map((h) => (h.name === name ? fresh : h));
    writeLab(lab);
    return fresh;
}

/**
 * `lab trust NAME…`: reads each named host's public host key inside the host (never over SSH) and records it
 * as trusted, as an operator does after checking a re-installed machine's key on its console.
 */
export function trustHostKeys(names: readonly string[]): LabHost[] {
    const lab = requireLab();
    const hosts = pick(lab, names);
    for (const h of hosts) h.hostKey = readHostKey(h);
    writeLab(lab);
    return hosts;
}

export interface UpResult {
    created: number;
    updated: number;
    replaced: number;
    deleted: number;
    unchanged: number;
    /** Unchanged commands run again (rerunCommands). */
    rerun: number;
    /** Every step of the run, in order. */
    steps: StepRecord[];
    /** From `up` start to the health gate passing, in seconds. */
    bootstrapSeconds: number;
    /** The program run alone, in seconds. */
    programSeconds: number;
    hostsCreated: boolean;
    outputs: Record<string, unknown>;
}

/** `lab up`: hosts (unless a live lab exists), tarball, stack, then the program. */
export async function up(opts: UpOptions = {}): Promise<UpResult> {
    const t0 = Date.now();
    const p = labPaths();
    const logStream = (line: string) => {
        fs.appendFileSync(p.log, line + "\n");
        (opts.print ?? console.log)(line);
    };
    preflight();
    const members = opts.members ?? 3;
    if (!Number.isInteger(members) || members < 1 || members > MAX_HOSTS) throw new Error(`--members must be 1..${MAX_HOSTS}, got ${opts.members}`);
    fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    let lab = readLab();
    let hostsCreated = false;
    // Scaling a live lab: new hosts ("VMs") come up before the run; hosts leaving the stack are stopped
    // after a successful run, once their members' delete steps have removed them from the cluster.
    let leaving: LabHost[] = [];
    if (lab && lab.hosts.length > 0 && fs.existsSync(lab.rootfs)) {
        // Hosts that are off (a power cut, or this machine restarted) are booted, as Proxmox starts a
        // stopped VM: their overlays and etcd disks are kept, so their members come back with their data.
        const off = lab.hosts.filter((h) => !alive(h.runPid));
        if (off.length > 0) {
            logStream(`lab: ${off.map((h) => h.name).join(" ")} off: booting (disks kept)`);
            await bootHosts(lab, off);
        }
        const want = opts.members ?? lab.hosts.length;
        if (want > lab.hosts.length) {
            const added = await Promise.all(
                Array.from({ length: want - lab.hosts.length }, (_, i) =>
                    createHost({ dir: p.dir, index: lab!.hosts.length + i, prefix: lab!.prefix, pubkeyFile: `${p.sshKey}.pub`, rootfs: lab!.rootfs }),
                ),
            );
            lab.hosts.push(...added);
            writeLab(lab);
            logStream(`lab: scaling out: ${added.map((h) => `${h.name}=${h.address}`).join(" ")} up`);
        } else if (want < lab.hosts.length) {
            leaving = lab.hosts.slice(want);
            logStream(`lab: scaling in: ${leaving.map((h) => h.name).join(" ")} leave the stack (stopped after the run)`);
        }
        logStream(`lab: ${lab.hosts.length} hosts already running; running the program against them`);
    } else {
        if (lab) await down({ print: logStream });
        fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
        const prefix = opts.prefix ?? DEFAULT_PREFIX;
        if (!/^127\.\d{1,3}\.\d{1,3}$/.test(prefix) || prefix === "127.0.0") throw new Error(`--prefix must be 127.x.y (not 127.0.0), got ${prefix}`);
        checkRangeFree(prefix);
        fs.mkdirSync(path.dirname(p.sshKey), { recursive: true, mode: 0o700 });
        if (!fs.existsSync(p.sshKey)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "etcd-ha-lab", "-f", p.sshKey]);
        const rootfs = ensureRootfs();
        lab = { version: 2, createdAt: new Date().toISOString(), prefix, admin: ADMIN_USER, rootfs, hosts: [] };
        writeLab(lab);
        const tHosts = Date.now();
        const hosts = await Promise.allSettled(Array.from({ length: members }, (_, i) => createHost({ dir: p.dir, index: i, prefix, pubkeyFile: `${p.sshKey}.pub`, rootfs })));
        lab.hosts = hosts.filter((h): h is PromiseFulfilledResult<LabHost> => h.status === "fulfilled").map((h) => h.value).sort((a, b) => a.index - b.index);
        writeLab(lab);
        const failed = hosts.find((h): h is PromiseRejectedResult => h.status === "rejected");
        if (failed) throw failed.reason;
        hostsCreated = true;
        logStream(
            `lab: ${members} hosts booted (systemd-nspawn, real systemd) in ${((Date.now() - tHosts) / 1000).toFixed(1)}s: ${lab.hosts.map((h) => `${h.name}=${h.address}`).join(" ")}`,
        );
    }
    const release = opts.version ?? lab.release ?? DEFAULT_RELEASE;
    const { version, tarball, sha256 } = packTarball(p.dir, release, opts.build);
    const stackHosts = lab.hosts.filter((h) => !leaving.includes(h));
    const unknownKeys = stackHosts.filter((h) => h.hostKey === undefined).map((h) => h.name);
    if (unknownKeys.length > 0) throw new Error(`lab: no recorded host key for ${unknownKeys.join(", ")} (a lab from before host-key pinning): run \`npm run lab -- trust ${unknownKeys.join(" ")}\` to read them on the hosts`);
    fs.writeFileSync(p.stackFile, renderLabStack({ hosts: stackHosts.map((h) => ({ ...h, hostKey: h.hostKey! })), version, tarball, sha256, replace: opts.replace, snapshots: opts.snapshots, restore: opts.restore }));

    const project = readProject(PROJECT_ROOT);
    const stack = readStackFile(p.stackFile, project);
    const keyName = `${project.name}:${SECRET_KEYS.sshPrivateKey}`;
    stack.config[keyName] = fs.readFileSync(p.sshKey, "utf8");
    stack.secretKeys.push(keyName);

    const box = SecretBox.open(p.secretsKey);
    const saved = loadState(p.state, box);
    const previous = saved?.resources;
    const record: RecordedResource[] = [];
    const engine = new LabEngine({
        previous,
        pendingDeletes: saved?.pendingDeletes,
        registration: registrationFrom(record),
        rerunCommands: opts.rerunCommands,
        now: opts.now,
        log: logStream,
    });
    const stackOutputs: { value?: Record<string, unknown> } = {};
    const tProgram = Date.now();
    let outputs: Record<string, unknown> | undefined;
    let error: unknown;
    try {
        const r = await runProgram({
            program: PROGRAM,
            project: stack.project,
            stack: stack.stack,
            config: stack.config,
            secretKeys: stack.secretKeys,
            record,
            newResource: engine.newResource,
            onStackOutputs: (o) => (stackOutputs.value = o),
        });
        outputs = r.outputs;
        // The end of the run: resources gone from the program and old halves of replacements are deleted.
        const deleteError = await engine.finish();
        if (deleteError) error = deleteError;
    } catch (e) {
        error = engine.failed ?? e;
    }
    // The state records what exists, also after a failure: a failed create leaves no entry; a resource the
    // failed run never reached keeps its old entry; deletes not done stay pending.
    const parentOf = new Map(record.map((r) => [keyOf(r.type, r.name), r.parent]));
    const kept = outputs === undefined ? [...(previous?.values() ?? [])].filter((r) => !engine.resources.has(keyOf(r.type, r.name))) : [];
    const resources = [...engine.resources.values(), ...kept].map((s) => {
        const k = keyOf(s.type, s.name);
        return sealResource(box, { ...s, urn: s.urn ?? "", parent: parentOf.get(k) ?? saved?.parents.get(k) ?? "", dependencies: s.dependencies ?? [] });
    });
    const state: StateFile = {
        version: 1,
        project: stack.project,
        stack: stack.stack,
        updatedAt: new Date().toISOString(),
        resources,
        pendingDeletes: engine.pendingDeletes.map((r) => sealResource(box, r)),
        outputs: box.seal(stackOutputs.value ?? {}) as Record<string, unknown>,
    };
    fs.writeFileSync(p.state, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
    if (error !== undefined) throw error;
    if (lab.release !== release) {
        lab.release = release;
        writeLab(lab);
    }
    if (leaving.length > 0) {
        await stopHosts(leaving);
        lab.hosts = stackHosts;
        writeLab(lab);
        logStream(`lab: stopped ${leaving.map((h) => h.name).join(" ")}`);
    }
    const o = outputs!;
    fs.mkdirSync(path.dirname(p.client.cacert), { recursive: true, mode: 0o755 });
    fs.writeFileSync(p.client.cacert, String(o.caCertPem), { mode: 0o644 });
    fs.writeFileSync(p.client.cert, String(o.adminClientCertPem), { mode: 0o644 });
    fs.writeFileSync(p.client.key, String(o.adminClientKeyPem), { mode: 0o600 });
    const health = engine.steps.find((s) => s.name === `${CLUSTER_NAME}-health` && s.op !== "same" && s.op !== "delete");
    const gateMs = health ? engine.startedAt - t0 + health.endMs : Date.now() - t0;
    const count = (op: string) => engine.steps.filter((s) => s.op === op).length;
    const rerun = engine.steps.filter((s) => s.op === "update" && s.changed?.length === 0).length;
    const result: UpResult = {
        created: count("create"),
        updated: count("update") - rerun,
        replaced: count("replace"),
        deleted: count("delete"),
        unchanged: count("same"),
        rerun,
        bootstrapSeconds: gateMs / 1000,
        programSeconds: (Date.now() - tProgram) / 1000,
        hostsCreated,
        outputs: o,
        steps: engine.steps,
    };
    logStream(
        `lab: ${result.created} created, ${result.updated} updated, ${result.replaced} replaced, ${result.deleted} deleted, ${result.rerun} re-run, ${result.unchanged} unchanged; program ${result.programSeconds.toFixed(1)}s; ` +
            (health ? `bootstrap (up start → health gate passed) ${result.bootstrapSeconds.toFixed(1)}s` : "health gate not run (nothing changed)"),
    );
    if (health) logStream(`lab: health gate: ${String(o.health)}`);
    return result;
}

/** One member in `status --json`. */
export interface StatusMember {
    name: string;
    clientUrl: string;
    pid: number | null;
    healthy: boolean;
    leader: boolean;
}

/** The `status --json` contract. */
export interface LabStatus {
    members: StatusMember[];
    endpoints: string[];
    client: { cacert: string; cert: string; key: string };
}

/**
 * The etcd main PID of a host as seen from this machine (null when not running): systemd's MainPID of
 * etcd.service inside the host, mapped out of the host's PID namespace.
 */
export function etcdPid(h: LabHost): number | null {
    let out: string;
    try {
        out = inHost(h, ["systemctl", "show", "-p", "MainPID", "--value", "etcd"]);
    } catch {
        return null;
    }
    const inner = Number(out.trim());
    if (!Number.isInteger(inner) || inner <= 0) return null;
    return machinePid(h, inner) ?? null;
}

/** The lab record, or an error saying to run `up` first. */
function requireLab(): LabRecord {
    const lab = readLab();
    if (!lab) throw new Error("no lab: run `npm run lab -- up` first");
    return lab;
}

/** The lab's hosts by name (all when `names` is undefined); unknown names fail. */
function pick(lab: LabRecord, names?: readonly string[]): LabHost[] {
    if (names === undefined) return lab.hosts;
    const out = names.map((n) => lab.hosts.find((h) => h.name === n));
    const unknown = names.filter((_, i) => out[i] === undefined);
    if (unknown.length > 0) throw new Error(`no lab host ${unknown.join(", ")} (hosts: ${lab.hosts.map((h) => h.name).join(", ")})`);
    return out as LabHost[];
}

/**
 * A power cut: every process of the named hosts (all by default) killed at once, as when a hypervisor
 * loses power. What the hosts wrote to their disks stays; their page cache is this machine's and survives.
 */
export async function powerCut(names?: readonly string[]): Promise<void> {
    const lab = requireLab();
    await powerOff(pick(lab, names), "cut");
    writeLab(lab);
}

/**
 * Powers the given hosts of the lab on at once (their switch PIDs recorded in lab.json) and waits until
 * each has booted and answers SSH. A member booted before its peers holds `multi-user.target` (etcd waits
 * for quorum): SSH is what counts.
 */
async function bootHosts(lab: LabRecord, hosts: readonly LabHost[]): Promise<void> {
    for (const h of hosts) powerOn(h, lab.rootfs, `${labPaths().sshKey}.pub`);
    writeLab(lab);
    await Promise.all(hosts.map((h) => waitBooted(h, { allowStarting: true })));
}

/** Powers the named hosts (all by default) that are off on at once and waits until each has booted and answers SSH. */
export async function powerOnHosts(names?: readonly string[]): Promise<number> {
    const lab = requireLab();
    // Hosts already on are left as they are (powering on is idempotent).
    const t0 = Date.now();
    await bootHosts(
        lab,
        pick(lab, names).filter((h) => !alive(h.runPid)),
    );
    return Date.now() - t0;
}

/**
 * `systemctl reboot` inside a host (its power switch boots it again); waits until the new boot answers
 * SSH. Returns the host's new PID 1 and the milliseconds from the reboot command to that.
 */
export async function rebootHost(name: string): Promise<{ initPid: number; ms: number }> {
    const [h] = pick(requireLab(), [name]);
    const before = initPid(h);
    if (before === undefined) throw new Error(`lab host ${name} is off: power it on first (npm run lab -- power-on ${name})`);
    const t0 = Date.now();
    // The command may be cut off by the reboot it starts: its exit status says nothing.
    tryInHost(h, ["systemctl", "reboot"]);
    for (let i = 0; i < 600 && Date.now() - t0 < 60_000; i++) {
        const now = initPid(h);
        if (now !== undefined && now !== before) break;
        await new Promise((r) => setTimeout(r, 100));
    }
    await waitBooted(h, { allowStarting: true, timeoutMs: 60_000 });
    const pid = initPid(h);
    if (pid === undefined || pid === before) throw new Error(`lab host ${name} did not reboot (PID 1 still ${before})`);
    return { initPid: pid, ms: Date.now() - t0 };
}

/** `lab status`: every member's PID, health and leadership, read with the admin client from the machine. */
export function status(): LabStatus {
    const lab = readLab();
    if (!lab) throw new Error("no lab: run `npm run lab -- up` first");
    const p = labPaths();
    const clientUrl = (h: LabHost) => `https://${h.address}:${HOST_PORTS.client}`;
    const members = lab.hosts.map((h): StatusMember => {
        let healthy = false;
        let leader = false;
        if (fs.existsSync(p.client.key)) {
            const etcdctl = (args: string[]) =>
                spawnSync("etcdctl", ["--endpoints", clientUrl(h), "--cacert", p.client.cacert, "--cert", p.client.cert, "--key", p.client.key, "--dial-timeout=2s", "--command-timeout=3s", ...args], {
                    encoding: "utf8",
                    env: { ...process.env, ETCDCTL_API: "3" },
                    timeout: 10_000,
                });
            const r = etcdctl(["endpoint", "status", "-w", "json"]);
            if (r.status === 0) {
                const st = (JSON.parse(r.stdout) as { Status: { header: { member_id: number | string }; leader: number | string } }[])[0]?.Status;
                healthy = etcdctl(["endpoint", "health"]).status === 0;
                leader = st !== undefined && String(st.leader) === String(st.header.member_id) && String(st.leader) !== "0";
            }
        }
        return { name: h.name, clientUrl: clientUrl(h), pid: etcdPid(h), healthy, leader };
    });
    return { members, endpoints: members.map((m) => m.clientUrl), client: p.client };
}

/** `lab down`: ends every process of every lab host (by PID, namespace by namespace) and removes the lab dir. */
export async function down(opts: { print?: (line: string) => void } = {}): Promise<{ stopped: number }> {
    const print = opts.print ?? console.log;
    const p = labPaths();
    const lab = readLab();
    let stopped = 0;
    if (lab) {
        const pids = await stopHosts(lab.hosts);
        stopped = pids.length;
        print(`lab: stopped ${pids.length} processes of ${lab.hosts.length} hosts (clean shutdown)`);
    }
    removeChain();
    fs.rmSync(p.dir, { recursive: true, force: true });
    print(`lab: removed ${p.dir}`);
    return { stopped };
}

