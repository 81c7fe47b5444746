/**
 * The lab: `up` (hosts, the air-gapped tarball, the lab stack, then the real `pulumi up` of this project's
 * program), `status` (the JSON contract), `down` (`pulumi destroy`, then everything the lab started, by PID,
 * and its files).
 */
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { SECRET_KEYS } from "../../components/config/schema";
import { removeChain } from "./faults/partition";
import { engine, pulumiEnv, pulumiOk, pulumiRun, RunResult, stackExists, stackInit, StepRecord } from "./pulumi";
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
    bootNewHost,
    createHost,
    ensureRootfs,
    inHost,
    initPid,
    labDir,
    machinePid,
    powerOff,
    powerOn,
    preflight,
    prepareHost,
    readHostKey,
    readLab,
    stopHosts,
    tryInHost,
    waitBooted,
    writeLab,
} from "./hosts";
import { etcdBuild } from "./etcdBuild";
import { ObjectStoreRecord, prepareObjectStore, startObjectStore, stopObjectStore, storeAddress, storeEndpoint, storeRunning } from "./objectStore";

export const PROGRAM = path.join(PROJECT_ROOT, "index.ts");
export const CLUSTER_NAME = "etcd";
/** The lab's stack (its config file and state live in the lab dir, never in the repository). */
export const STACK = "lab";

/** Paths inside the lab dir. */
export function labPaths(dir = labDir()) {
    return {
        dir,
        sshKey: path.join(dir, "ssh", "id_ed25519"),
        stackFile: path.join(dir, `Pulumi.${STACK}.yaml`),
        /** The file backend (`pulumi login file://…`): the stack's state. */
        backend: path.join(dir, "backend"),
        /** The passphrase of the stack's secrets provider (0600). */
        passphrase: path.join(dir, "passphrase"),
        /** The engine's event log of the last command. */
        eventLog: path.join(dir, "events.jsonl"),
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
 * same-version upgrade). A tarball packed before from the same files is used again.
 */
export function packTarball(dir: string, release: string, build?: string): { version: string; tarball: string; sha256: string } {
    if (build !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(build)) throw new Error(`--build must be 1-64 of [A-Za-z0-9._-], got ${build}`);
    const { version, files, origin, tarball: built } = releaseBinaries(release);
    if (built !== undefined && build === undefined) {
        // The build's own tarball (already in the release layout, reproducible, with its .sha256).
        return { version, tarball: built, sha256: fs.readFileSync(`${built}.sha256`, "utf8").split(" ")[0] };
    }
    const top = `etcd-v${version}-linux-amd64`;
    const tarball = path.join(dir, build ? `${top}-${build}.tar.gz` : `${top}.tar.gz`);
    // Packed before, from these very files (its .sha256 is written last, after the tarball): used as it is, so
    // each later run of a lab does not gzip 60-90 MB again.
    const packed = `${tarball}.sha256`;
    if (fs.existsSync(packed) && files.every((f) => fs.statSync(f).mtimeMs <= fs.statSync(packed).mtimeMs)) {
        return { version, tarball, sha256: fs.readFileSync(packed, "utf8").split(" ")[0] };
    }
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
        fs.rmSync(packed, { force: true });
        execFileSync("sh", ["-c", `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf - "$2" | gzip -n > "$3"`, "sh", work, top, tarball]);
        const sha256 = createHash("sha256").update(fs.readFileSync(tarball)).digest("hex");
        fs.writeFileSync(packed, `${sha256}  ${path.basename(tarball)}\n`);
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
    renew?: string;
    /** What `pulumi` itself keeps in the file (`encryptionsalt`, `secure:` values): carried over unchanged. */
    keep?: { encryptionsalt?: string; secure?: Record<string, unknown> };
}): string {
    const doc = {
        ...(opts.keep?.encryptionsalt ? { encryptionsalt: opts.keep.encryptionsalt } : {}),
        config: {
            "etcd-ha:clusterName": CLUSTER_NAME,
            "etcd-ha:topology": "external",
            "etcd-ha:hosts": opts.hosts.map((h) => ({ name: h.name, address: h.address, hostKey: h.hostKey })),
            "etcd-ha:ssh": { user: ADMIN_USER },
            "etcd-ha:etcd": {
                version: opts.version,
                listenLocalhost: false,
                pki: { peerCertSans: ["localhost"], ...(opts.renew !== undefined ? { renew: opts.renew } : {}) },
                install: { method: "push", tarball: opts.tarball, sha256: opts.sha256 },
            },
            ...(opts.replace && opts.replace.length > 0 ? { "etcd-ha:replace": [...opts.replace] } : {}),
            ...(opts.snapshots ? { "etcd-ha:snapshots": opts.snapshots } : {}),
            ...(opts.restore ? { "etcd-ha:restore": opts.restore } : {}),
            ...(opts.keep?.secure ?? {}),
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
        "# etcd-ha:sshPrivateKey (secret) is the lab's key, <lab dir>/ssh/id_ed25519, set once with `pulumi config set",
        "# --secret` (passphrase secrets provider, <lab dir>/passphrase); the lab keeps it and `encryptionsalt` when it",
        "# writes this file again. Each host's hostKey is its public SSH host key, read inside the host when it was",
        "# created (lab.json), never over SSH.",
        YAML.stringify(doc, { lineWidth: 0 }).trimEnd(),
        "",
    ].join("\n");
}

export interface UpOptions {
    members?: number;
    prefix?: string;
    /**
     * Run every command's create again on a live lab (idempotency proof, as after a lost or restored state):
     * the stack's state is edited (`pulumi stack export` / `import`) so that every remote command's stored
     * `create` differs from the program's, and the engine updates each by running its create again.
     */
    rerunCommands?: boolean;
    /** Progress sink (default stdout). */
    print?: (line: string) => void;
    /**
     * `etcd.pki.renew`: a new value re-issues every leaf certificate now (kept for later runs, as an operator's
     * stack file keeps it). Default: the lab's last value.
     */
    renew?: string;
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
    /**
     * Start the lab's object store (versitygw on `<prefix>.250:9443`, TLS) and ship every snapshot to it
     * (`etcd-ha:snapshots.s3`). Once a lab has a store, later runs keep it without the flag.
     */
    objectStore?: boolean;
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
    /** Commands whose create ran again (rerunCommands). */
    rerun: number;
    /** Every step of the run, in order, from the engine's events. */
    steps: StepRecord[];
    /** From `up` start to the health gate passing, in seconds. */
    bootstrapSeconds: number;
    /** `pulumi up` alone, in seconds. */
    programSeconds: number;
    hostsCreated: boolean;
    outputs: Record<string, unknown>;
}

/** The lab stack's `pulumi` environment and the arguments that name its stack and config file. */
export function labPulumi(p = labPaths()) {
    return { env: pulumiEnv(p.dir), stackArgs: ["--stack", STACK, "--config-file", p.stackFile], cwd: PROJECT_ROOT };
}

/** What `pulumi` keeps in the stack file (salt, secure values), to carry over when the lab writes it again. */
function keptByPulumi(file: string): { encryptionsalt?: string; secure?: Record<string, unknown> } {
    if (!fs.existsSync(file)) return {};
    const doc = (YAML.parse(fs.readFileSync(file, "utf8")) ?? {}) as { encryptionsalt?: string; config?: Record<string, unknown> };
    const secure = Object.fromEntries(Object.entries(doc.config ?? {}).filter(([, v]) => typeof v === "object" && v !== null && "secure" in v));
    return { encryptionsalt: doc.encryptionsalt, secure };
}

/**
 * The lab stack's config file: the stack made on first use (`pulumi stack init`, passphrase secrets), the
 * config written from the lab's hosts, and the SSH key (and the object store's keys, with a store) set as
 * secrets (`pulumi config set --secret`) unless the file holds them already.
 */
function writeStack(p: ReturnType<typeof labPaths>, render: (keep: ReturnType<typeof keptByPulumi>) => string, store?: ObjectStoreRecord): void {
    const { env, stackArgs, cwd } = labPulumi(p);
    fs.writeFileSync(p.stackFile, render(keptByPulumi(p.stackFile)));
    stackInit(p.dir, STACK, env);
    const secrets: [string, () => string][] = [[SECRET_KEYS.sshPrivateKey, () => fs.readFileSync(p.sshKey, "utf8")]];
    if (store) secrets.push([SECRET_KEYS.s3AccessKeyId, () => store.accessKey], [SECRET_KEYS.s3SecretAccessKey, () => store.secretKey]);
    for (const [key, value] of secrets) {
        const keyName = `etcd-ha:${key}`;
        if (keyName in (keptByPulumi(p.stackFile).secure ?? {})) continue;
        pulumiOk(["config", "set", "--secret", keyName, ...stackArgs], env, { cwd, input: value() });
        // `config set` writes the file in its own way: write the lab's text again around what it added.
        fs.writeFileSync(p.stackFile, render(keptByPulumi(p.stackFile)));
    }
}

/**
 * `--rerun-commands`: edits the stack's state so that the next `up` runs every remote command's create
 * again (its stored `create` no longer matches the program's), as after a state restored from an old backup.
 */
function markCommandsForRerun(p: ReturnType<typeof labPaths>): number {
    const { env, cwd } = labPulumi(p);
    const state = JSON.parse(pulumiOk(["stack", "export", "--stack", STACK], env, { cwd })) as {
        deployment: { resources?: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] };
    };
    let n = 0;
    for (const r of state.deployment.resources ?? []) {
        if (r.type !== "command:remote:Command" || r.inputs?.create === undefined) continue;
        r.inputs.create = "# etcd-ha lab: stale state (--rerun-commands)";
        if (r.outputs && "create" in r.outputs) r.outputs.create = r.inputs.create;
        n++;
    }
    const file = path.join(p.dir, "rerun-state.json");
    fs.writeFileSync(file, JSON.stringify(state), { mode: 0o600 });
    try {
        pulumiOk(["stack", "import", "--file", file, "--stack", STACK], env, { cwd });
    } finally {
        fs.rmSync(file, { force: true });
    }
    return n;
}

/** The error of a failed `pulumi` run: the engine's error diagnostics, else the output's last lines. */
function runError(what: string, r: RunResult): Error {
    const detail = r.errors.length > 0 ? r.errors.join("\n") : r.lines.slice(-20).join("\n");
    return new Error(`${what} failed (exit ${r.status ?? "timeout"}):\n${detail}`);
}

/** `lab up`: hosts (unless a live lab exists), tarball, stack, then the real `pulumi up`. */
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
    /** A new lab's hosts booting (resolves to the first boot failure, if any). */
    let booting: Promise<unknown> = Promise.resolve(undefined);
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
        // The hosts boot while the stack is written and the engine starts: their keys are known before they
        // answer (prepareHost), and the provider's dial retries wait for their sshd.
        lab.hosts = Array.from({ length: members }, (_, i) => prepareHost({ dir: p.dir, index: i, prefix, rootfs }));
        const tHosts = Date.now();
        const all = lab.hosts;
        booting = Promise.allSettled(all.map((h) => bootNewHost(h, { pubkeyFile: `${p.sshKey}.pub`, rootfs }))).then((r) => {
            const failed = r.find((x): x is PromiseRejectedResult => x.status === "rejected");
            if (!failed) logStream(`lab: ${members} hosts booted (systemd-nspawn, real systemd) in ${((Date.now() - tHosts) / 1000).toFixed(1)}s: ${all.map((h) => `${h.name}=${h.address}`).join(" ")}`);
            return failed?.reason as unknown;
        });
        writeLab(lab);
        hostsCreated = true;
    }
    const release = opts.version ?? lab.release ?? DEFAULT_RELEASE;
    const { version, tarball, sha256 } = packTarball(p.dir, release, opts.build);
    const stackHosts = lab.hosts.filter((h) => !leaving.includes(h));
    const unknownKeys = stackHosts.filter((h) => h.hostKey === undefined).map((h) => h.name);
    if (unknownKeys.length > 0) throw new Error(`lab: no recorded host key for ${unknownKeys.join(", ")} (a lab from before host-key pinning): run \`npm run lab -- trust ${unknownKeys.join(" ")}\` to read them on the hosts`);
    const renew = opts.renew ?? lab.renew;
    // The object store (`--object-store`, or one this lab already has): running before the program ships to it.
    if (opts.objectStore && !lab.objectStore) {
        lab.objectStore = prepareObjectStore(path.join(p.dir, "objectstore"), storeAddress(lab.prefix));
        writeLab(lab);
    }
    if (lab.objectStore && !storeRunning(lab.objectStore)) {
        lab.objectStore = await startObjectStore(lab.objectStore);
        writeLab(lab);
        logStream(`lab: object store (versitygw) at ${storeEndpoint(lab.objectStore)}, bucket ${lab.objectStore.bucket}`);
    }
    const store = lab.objectStore;
    const snapshots = store ? { ...(opts.snapshots ?? {}), s3: { endpoint: storeEndpoint(store), bucket: store.bucket, region: store.region, caPem: fs.readFileSync(store.caFile, "utf8"), ...((opts.snapshots?.s3 as object | undefined) ?? {}) } } : opts.snapshots;
    writeStack(
        p,
        (keep) => renderLabStack({ hosts: stackHosts.map((h) => ({ ...h, hostKey: h.hostKey! })), version, tarball, sha256, replace: opts.replace, snapshots, restore: opts.restore, renew, keep }),
        store,
    );
    const { env, stackArgs, cwd } = labPulumi(p);
    const rerun = opts.rerunCommands ? markCommandsForRerun(p) : 0;
    if (opts.rerunCommands) logStream(`lab: ${rerun} commands marked to run their create again (stack state edited)`);
    const tProgram = Date.now();
    const run = await pulumiRun(["up", "--yes", "--skip-preview", ...stackArgs], env, { cwd, print: logStream, eventLog: p.eventLog, timeoutMs: 14 * 60_000 });
    const bootError = await booting;
    writeLab(lab);
    if (bootError !== undefined) throw bootError;
    if (run.status !== 0) throw runError("pulumi up", run);
    // The stack's outputs as the engine reported them in its events (secrets masked there); the secret ones
    // (the admin client's key) are read with `stack output --show-secrets` only when the client files change.
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined);
    let o: Record<string, unknown> = run.stackOutputs ?? {};
    const clientChanged = o.caCertPem !== read(p.client.cacert) || o.adminClientCertPem !== read(p.client.cert) || !fs.existsSync(p.client.key);
    if (clientChanged || typeof o.health !== "string") {
        o = JSON.parse(pulumiOk(["stack", "output", "--json", "--show-secrets", "--stack", STACK], env, { cwd })) as Record<string, unknown>;
    }
    if (lab.release !== release || lab.renew !== renew) {
        lab.release = release;
        lab.renew = renew;
        writeLab(lab);
    }
    if (leaving.length > 0) {
        await stopHosts(leaving);
        lab.hosts = stackHosts;
        writeLab(lab);
        logStream(`lab: stopped ${leaving.map((h) => h.name).join(" ")}`);
    }
    if (clientChanged) {
        fs.mkdirSync(path.dirname(p.client.cacert), { recursive: true, mode: 0o755 });
        fs.writeFileSync(p.client.cacert, String(o.caCertPem), { mode: 0o644 });
        fs.writeFileSync(p.client.cert, String(o.adminClientCertPem), { mode: 0o644 });
        fs.writeFileSync(p.client.key, String(o.adminClientKeyPem), { mode: 0o600 });
    }
    const steps = run.steps.filter((s) => s.op !== "component");
    const health = steps.find((s) => s.name === `${CLUSTER_NAME}-health` && s.op !== "same" && s.op !== "delete");
    const gateMs = health ? tProgram - t0 + health.endMs : Date.now() - t0;
    const count = (op: string) => steps.filter((s) => s.op === op).length;
    const result: UpResult = {
        created: count("create"),
        updated: count("update") - rerun,
        replaced: count("replace"),
        deleted: count("delete"),
        unchanged: count("same"),
        rerun,
        bootstrapSeconds: gateMs / 1000,
        programSeconds: run.ms / 1000,
        hostsCreated,
        outputs: o,
        steps: run.steps,
    };
    logStream(
        `lab: ${result.created} created, ${result.updated} updated, ${result.replaced} replaced, ${result.deleted} deleted, ${result.rerun} re-run, ${result.unchanged} unchanged; pulumi up ${result.programSeconds.toFixed(1)}s; ` +
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
    /**
     * Everything needed to run any `pulumi` command against the lab stack by hand: `cd CWD && env ENV BIN/pulumi
     * <command> --stack STACK --config-file CONFIGFILE` (stack export, preview, refresh, …).
     */
    pulumi: { bin: string; cwd: string; stack: string; configFile?: string; env: Record<string, string> };
    /** The lab's object store, when it has one: everything an S3 client needs. */
    objectStore?: { endpoint: string; bucket: string; region: string; accessKey: string; secretKey: string; caFile: string; running: boolean };
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

/** The lab and its object store (an error when it has none). */
function requireStore(): LabRecord & { objectStore: ObjectStoreRecord } {
    const lab = requireLab();
    if (!lab.objectStore) throw new Error("this lab has no object store: `npm run lab -- up --object-store`");
    return lab as LabRecord & { objectStore: ObjectStoreRecord };
}

/** Stops the lab's object store (its data kept), as a store outage. */
export function objectStoreDown(): void {
    const lab = requireStore();
    lab.objectStore = stopObjectStore(lab.objectStore);
    writeLab(lab);
}

/** Starts the lab's object store again (after objectStoreDown). */
export async function objectStoreUp(): Promise<void> {
    const lab = requireStore();
    lab.objectStore = await startObjectStore(lab.objectStore);
    writeLab(lab);
}

export interface SnapshotResult {
    member: string;
    /** The snapshot run's exit status (0, or 3 when the off-host copy failed: the snapshot is kept). */
    status: number;
    /** The local snapshot taken. */
    file?: string;
    sha256?: string;
    /** Every object uploaded (and read back) by this run, oldest first: a backfill lists more than one. */
    uploaded: { object: string; sha256: string }[];
    /** What the run printed (its journal). */
    lines: string[];
}

/**
 * `lab snapshot`: an on-demand snapshot on one member, as an operator takes it (`systemctl start
 * etcd-ha-snapshot.service`), read back from that run's journal: the snapshot, and the objects it uploaded.
 */
export function snapshot(member?: string): SnapshotResult {
    const lab = requireLab();
    const h = member === undefined ? lab.hosts[0] : lab.hosts.find((x) => x.name === member);
    if (!h) throw new Error(`no lab host ${member}`);
    // Its failure shows in ExecMainStatus below (exit 3: the snapshot is kept, the off-host copy failed).
    tryInHost(h, ["systemctl", "start", "etcd-ha-snapshot.service"], 900_000);
    const id = inHost(h, ["systemctl", "show", "-p", "InvocationID", "--value", "etcd-ha-snapshot.service"]).trim();
    const lines = id === "" ? [] : inHost(h, ["journalctl", "--no-pager", "-o", "cat", `_SYSTEMD_INVOCATION_ID=${id}`]).split("\n").filter((l) => l !== "");
    const result = inHost(h, ["systemctl", "show", "-p", "ExecMainStatus", "--value", "etcd-ha-snapshot.service"]).trim();
    const taken = lines.map((l) => /^snapshot (\S+) revision \d+ keys \d+ bytes \d+ sha256 ([0-9a-f]{64})$/.exec(l)).find((m) => m !== null);
    const uploaded = lines.map((l) => /^uploaded (s3:\/\/\S+) sha256 ([0-9a-f]{64}) \(read back\)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => ({ object: m[1], sha256: m[2] }));
    return { member: h.name, status: Number(result), ...(taken ? { file: taken[1], sha256: taken[2] } : {}), uploaded, lines };
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
    const { env, cwd } = labPulumi(p);
    return {
        members,
        endpoints: members.map((m) => m.clientUrl),
        client: p.client,
        pulumi: { bin: path.join(engine().bin, "pulumi"), cwd, stack: STACK, ...(fs.existsSync(p.stackFile) ? { configFile: p.stackFile } : {}), env },
        ...(lab.objectStore
            ? {
                  objectStore: {
                      endpoint: storeEndpoint(lab.objectStore),
                      bucket: lab.objectStore.bucket,
                      region: lab.objectStore.region,
                      accessKey: lab.objectStore.accessKey,
                      secretKey: lab.objectStore.secretKey,
                      caFile: lab.objectStore.caFile,
                      running: storeRunning(lab.objectStore),
                  },
              }
            : {}),
    };
}

/**
 * `lab down`: `pulumi destroy` of the lab stack while its hosts run (each member leaves: etcd stopped and its
 * data wiped, as on any stack), then ends every process of every lab host (by PID, namespace by namespace)
 * and removes the lab dir. A failed destroy is reported, and the hosts go all the same. `destroy: false` skips
 * the destroy (the hosts go with their state, as when one is off): for a test suite's teardown, whose lab is
 * removed whole; `tests/lab.test.ts` proves the destroy itself.
 */
export async function down(opts: { print?: (line: string) => void; destroy?: boolean } = {}): Promise<{ stopped: number; destroySeconds?: number; destroyError?: string }> {
    const print = opts.print ?? console.log;
    const p = labPaths();
    const lab = readLab();
    let stopped = 0;
    let destroySeconds: number | undefined;
    let destroyError: string | undefined;
    if (lab && opts.destroy !== false && fs.existsSync(p.stackFile) && stackExists(labPulumi(p).env, STACK)) {
        const off = lab.hosts.filter((h) => !alive(h.runPid)).map((h) => h.name);
        if (off.length > 0) {
            print(`lab: ${off.join(" ")} off: not destroying the stack (its steps would wait for them); the hosts go with their state`);
        } else {
            const { env, stackArgs, cwd } = labPulumi(p);
            const run = await pulumiRun(["destroy", "--yes", "--skip-preview", ...stackArgs], env, { cwd, print, eventLog: p.eventLog, timeoutMs: 10 * 60_000 });
            destroySeconds = run.ms / 1000;
            if (run.status === 0) print(`lab: pulumi destroy: ${run.steps.filter((s) => s.op === "delete").length} deleted in ${destroySeconds.toFixed(1)}s`);
            else {
                destroyError = runError("pulumi destroy", run).message;
                print(`lab: ${destroyError}`);
            }
        }
    }
    if (lab) {
        const pids = await stopHosts(lab.hosts);
        stopped = pids.length;
        print(`lab: stopped ${pids.length} processes of ${lab.hosts.length} hosts (clean shutdown)`);
    }
    if (lab) removeChain(lab.prefix);
    if (lab?.objectStore && storeRunning(lab.objectStore)) {
        stopObjectStore(lab.objectStore);
        print(`lab: stopped the object store`);
    }
    fs.rmSync(p.dir, { recursive: true, force: true });
    print(`lab: removed ${p.dir}`);
    return { stopped, destroySeconds, destroyError };
}

