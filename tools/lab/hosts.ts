/**
 * Lab hosts: N machines on this one, each a systemd-nspawn container with real systemd as PID 1, booted
 * from one read-only Debian root file system (tools/lab/rootfs.sh, cached outside the repository) with an
 * overlay of its own that keeps its state across reboots. Each host has its own loopback address
 * (127.66.0.11, .12, …) on the machine's shared network stack, its own sshd (key-only, an `ubuntu` sudo
 * user, as cloud-init makes it), hostname, machine-id, SSH host keys, journal and a dedicated "etcd disk"
 * mounted at /var/lib/etcd. Nothing listens on a non-loopback address, so no packet can leave the machine.
 *
 * A host's power switch is tools/lab/host-run.sh: it runs nspawn from a cgroup of the host's own, boots the
 * machine again after `systemctl reboot` inside, and ends when the machine is off. `lab.json` in the lab dir
 * records every host's switch by PID, so `down` ends exactly what the lab started.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { normalizeHostKey } from "../../components/hosts";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
/** The default address range: 127.66.0.0/24, hosts from .11. */
export const DEFAULT_PREFIX = "127.66.0";
export const FIRST_HOST = 11;
/** Most hosts one lab holds (each gets its own system uid range, see renderHostFiles). */
export const MAX_HOSTS = 9;
/** The admin user on every lab host (Ubuntu cloud images' default user). */
export const ADMIN_USER = "ubuntu";
/** Ports every host uses: sshd and the etcd defaults. */
export const HOST_PORTS = { ssh: 22, client: 2379, peer: 2380, metrics: 2381 } as const;
/** The cgroup folder (in the name=systemd and the unified hierarchy) under which every lab host runs. */
export const CGROUP_ROOT = "etcd-ha-lab";
const CGROUP_FS = "/sys/fs/cgroup";
const HIERARCHIES = ["systemd", "unified"] as const;
/** PATH for commands run inside a host (its own, never the caller's). */
const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** One lab host as recorded in lab.json. */
export interface LabHost {
    name: string;
    address: string;
    index: number;
    /** The host's directory on the machine (upper/, work/, disk/, console.log). */
    dir: string;
    /** The nspawn machine name, unique on this machine: `etcd-ha-<prefix with dashes>-<name>`. */
    machine: string;
    /** The host's cgroup path, relative to each hierarchy's root. */
    cgroup: string;
    /** PID of the host's power switch (host-run.sh) for the current power cycle; 0 when off. */
    runPid: number;
    /**
     * The host's public SSH host key as the operator trusts it (read on the host itself, out of band, when it
     * was created; the lab stack pins it). A host whose key changed since is refused by every remote step.
     */
    hostKey?: string;
}

/** lab.json: what `up` created. */
export interface LabRecord {
    version: 2;
    createdAt: string;
    prefix: string;
    admin: string;
    /** The root file system every host boots (their overlays are made against it). */
    rootfs: string;
    /** The etcd release of the last successful run (`up --version`), the default of the next. */
    release?: string;
    /** `etcd.pki.renew` of the last successful run (`up --renew`), kept for the next. */
    renew?: string;
    /** The lab's object store (`up --object-store`), which the lab stack ships snapshots to. */
    objectStore?: import("./objectStore").ObjectStoreRecord;
    hosts: LabHost[];
}

export function labDir(): string {
    return process.env.ETCD_HA_LAB_DIR ?? path.join(PROJECT_ROOT, ".lab");
}

export const labFile = (dir = labDir()) => path.join(dir, "lab.json");

export function readLab(dir = labDir()): LabRecord | undefined {
    const f = labFile(dir);
    if (!fs.existsSync(f)) return undefined;
    const rec = JSON.parse(fs.readFileSync(f, "utf8")) as { version?: number };
    if (rec.version !== 2) {
        throw new Error(`${f} was written by an older lab (version ${rec.version}, before nspawn hosts): end its processes and remove ${dir}, then run \`npm run lab -- up\` again`);
    }
    return rec as LabRecord;
}

export function writeLab(rec: LabRecord, dir = labDir()): void {
    fs.writeFileSync(labFile(dir), JSON.stringify(rec, null, 2) + "\n");
}

/** Commands the lab needs, with the Debian package that provides each. */
export const LAB_COMMANDS: readonly [string, string][] = [
    ["systemd-nspawn", "systemd-container"],
    ["debootstrap", "debootstrap"],
    ["ssh-keygen", "openssh-client"],
    ["iptables", "iptables"],
    ["etcd", "etcd-server"],
    ["etcdctl", "etcd-client"],
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["ss", "iproute2"],
    ["openssl", "openssl"],
];

const missingPackages = () => [...new Set(LAB_COMMANDS.filter(([cmd]) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0).map(([, pkg]) => pkg))];

/**
 * Checks this is Linux and root, and that every lab command is present. Missing packages are installed
 * with apt-get (tools/install-os-deps.sh) on Debian/Ubuntu; otherwise it fails naming what to install.
 */
export function preflight(): void {
    if (process.platform !== "linux") throw new Error("the lab needs Linux (systemd-nspawn, loopback addresses)");
    if (process.getuid?.() !== 0) throw new Error("the lab needs root (systemd-nspawn, mounts, cgroups, iptables): run it as root");
    let missing = missingPackages();
    if (missing.length > 0 && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) {
        console.error(`lab: installing missing OS packages: ${missing.join(" ")}`);
        spawnSync("bash", [path.join(PROJECT_ROOT, "tools", "install-os-deps.sh")], { stdio: ["ignore", "inherit", "inherit"], timeout: 600_000 });
        missing = missingPackages();
    }
    if (missing.length > 0) {
        const pkgs = [...new Set(missing)].join(" ");
        throw new Error(`the lab needs OS packages: ${pkgs}; install them with \`bash tools/install-os-deps.sh\` (as root on Debian/Ubuntu) or \`apt-get install -y ${pkgs}\``);
    }
    for (const h of HIERARCHIES) {
        if (!fs.existsSync(path.join(CGROUP_FS, h, "cgroup.procs"))) {
            throw new Error(`the lab needs the ${h === "systemd" ? "name=systemd" : "cgroup2 (unified)"} hierarchy at ${CGROUP_FS}/${h} (systemd-nspawn runs each host from a cgroup of its own there)`);
        }
    }
}

/** The lab hosts' root file system: built once by tools/lab/rootfs.sh (about a minute), then its cached path. */
export function ensureRootfs(): string {
    const r = spawnSync("bash", [path.join(__dirname, "rootfs.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 1_200_000 });
    const dir = r.stdout?.trim().split("\n").pop() ?? "";
    if (r.status !== 0 || !dir || !fs.existsSync(path.join(dir, ".etcd-ha-lab-rootfs"))) {
        throw new Error(`building the lab root file system failed (exit ${r.status ?? r.signal}): run \`bash tools/lab/rootfs.sh\` to see why`);
    }
    return dir;
}

export function hostAddress(index: number, prefix = DEFAULT_PREFIX): string {
    return `${prefix}.${FIRST_HOST + index}`;
}

export function hostName(index: number): string {
    return `etcd${index + 1}`;
}

/** The nspawn machine name and cgroup path of a host: unique per lab range, so several labs can run at once. */
export function hostIds(prefix: string, name: string): { machine: string; cgroup: string } {
    const key = prefix.replace(/\./g, "-");
    return { machine: `etcd-ha-${key}-${name}`, cgroup: `${CGROUP_ROOT}/${key}/${name}` };
}

/** Listening TCP sockets on this machine (`ss -ltnH`), as `address:port`. */
export function listeners(): { address: string; port: number }[] {
    const out = execFileSync("ss", ["-ltnH"], { encoding: "utf8" });
    return out
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => l.trim().split(/\s+/)[3])
        .map((local) => {
            const i = local.lastIndexOf(":");
            return { address: local.slice(0, i).replace(/^\[|\]$/g, "").replace(/%.*$/, ""), port: Number(local.slice(i + 1)) };
        });
}

/**
 * Refuses a range something else already uses: any listener on an address of the range, or a wildcard
 * listener on a port the hosts need (which would collide with every host's bind).
 */
export function checkRangeFree(prefix: string, ports: readonly number[] = Object.values(HOST_PORTS)): void {
    const taken = listeners().filter(
        (l) => l.address.startsWith(`${prefix}.`) || (["0.0.0.0", "*", "::"].includes(l.address) && ports.includes(l.port)),
    );
    if (taken.length > 0) {
        throw new Error(
            `the lab range ${prefix}.0/24 is not free: ${taken.map((t) => `${t.address}:${t.port}`).join(", ")} already listen(s) (ss -ltn); ` +
                `stop it, run \`npm run lab -- down\` if it is an old lab, or pick another range with --prefix 127.x.y`,
        );
    }
}

/** A file a host gets in its overlay before it boots (path inside the host). */
export interface HostFile {
    path: string;
    content: string;
    mode: number;
    /** Owner uid/gid (default root). */
    uid?: number;
    gid?: number;
    /** Written only when the host has none yet (kept across boots). */
    once?: boolean;
}

/**
 * What makes one host its own machine, written into its overlay before every boot (pure): hostname and
 * /etc/hosts (its name on its address, as cloud-init's manage_etc_hosts writes it), sshd listening only on
 * its address, the admin user's authorized key, a machine-id (first boot only), and a system uid/gid range
 * of its own in login.defs (so each host's `etcd` user has a distinct uid on this shared network stack:
 * the partition rules match on it).
 */
export function renderHostFiles(h: {
    name: string;
    address: string;
    index: number;
    machineId: string;
    authorizedKey: string;
    baseLoginDefs: string;
    adminUid: number;
    adminGid: number;
}): HostFile[] {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(h.name)) throw new Error(`bad host name ${h.name}`);
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h.address)) throw new Error(`lab host addresses are loopback (127.x.y.z), got ${h.address}`);
    if (!/^[0-9a-f]{32}$/.test(h.machineId)) throw new Error(`bad machine-id ${h.machineId}`);
    const lo = 900 + 10 * h.index;
    const hi = lo + 9;
    const loginDefs = h.baseLoginDefs
        .split("\n")
        .filter((l) => !/^#?\s*SYS_(UID|GID)_(MIN|MAX)\s/.test(l))
        .join("\n")
        .trimEnd();
    return [
        { path: "/etc/machine-id", content: `${h.machineId}\n`, mode: 0o444, once: true },
        { path: "/etc/hostname", content: `${h.name}\n`, mode: 0o644 },
        {
            path: "/etc/hosts",
            content: ["127.0.0.1 localhost", `${h.address} ${h.name}`, "::1 localhost ip6-localhost ip6-loopback", "ff02::1 ip6-allnodes", "ff02::2 ip6-allrouters", ""].join("\n"),
            mode: 0o644,
        },
        {
            path: "/etc/ssh/sshd_config.d/60-etcd-ha-lab-listen.conf",
            content: `# etcd-ha lab: this host's sshd listens only on its own address (the machine's network stack is shared).\nListenAddress ${h.address}:${HOST_PORTS.ssh}\n`,
            mode: 0o644,
        },
        {
            path: "/etc/login.defs",
            content: `${loginDefs}\n# etcd-ha lab: this host's own system uid/gid range (distinct etcd uids across hosts)\nSYS_UID_MIN ${lo}\nSYS_UID_MAX ${hi}\nSYS_GID_MIN ${lo}\nSYS_GID_MAX ${hi}\n`,
            mode: 0o644,
        },
        { path: `/home/${ADMIN_USER}/.ssh/authorized_keys`, content: h.authorizedKey.trim() + "\n", mode: 0o600, uid: h.adminUid, gid: h.adminGid },
    ];
}

/** Creates `rel`'s parent dirs in the overlay's upper layer with the owner and mode they have in the base. */
function mkdirsLike(upper: string, base: string, rel: string, fallback: { uid: number; gid: number }): void {
    const parts = path.dirname(rel).split("/").filter(Boolean);
    let cur = "";
    for (const part of parts) {
        cur = `${cur}/${part}`;
        const target = path.join(upper, cur);
        if (fs.existsSync(target)) continue;
        const like = fs.existsSync(path.join(base, cur)) ? fs.statSync(path.join(base, cur)) : undefined;
        fs.mkdirSync(target, { mode: 0o755 });
        fs.chownSync(target, like?.uid ?? fallback.uid, like?.gid ?? fallback.gid);
        fs.chmodSync(target, like ? like.mode & 0o7777 : 0o700);
    }
}

/** Writes a host's files (renderHostFiles) into its overlay's upper layer. */
function writeHostFiles(h: LabHost, rootfs: string, pubkeyFile: string): void {
    const upper = path.join(h.dir, "upper");
    fs.mkdirSync(upper, { recursive: true, mode: 0o755 });
    const passwd = fs.readFileSync(path.join(rootfs, "etc", "passwd"), "utf8");
    const admin = new RegExp(`^${ADMIN_USER}:[^:]*:(\\d+):(\\d+):`, "m").exec(passwd);
    if (!admin) throw new Error(`the lab rootfs ${rootfs} has no ${ADMIN_USER} user: rebuild it (bash tools/lab/rootfs.sh)`);
    const existingId = path.join(upper, "etc", "machine-id");
    const files = renderHostFiles({
        name: h.name,
        address: h.address,
        index: h.index,
        machineId: fs.existsSync(existingId) ? fs.readFileSync(existingId, "utf8").trim() : execFileSync("systemd-id128", ["new"], { encoding: "utf8" }).trim(),
        authorizedKey: fs.readFileSync(pubkeyFile, "utf8"),
        baseLoginDefs: fs.readFileSync(path.join(rootfs, "etc", "login.defs"), "utf8"),
        adminUid: Number(admin[1]),
        adminGid: Number(admin[2]),
    });
    for (const f of files) {
        const target = path.join(upper, f.path);
        if (f.once && fs.existsSync(target)) continue;
        mkdirsLike(upper, rootfs, f.path, { uid: f.uid ?? 0, gid: f.gid ?? 0 });
        fs.writeFileSync(target, f.content);
        fs.chownSync(target, f.uid ?? 0, f.gid ?? 0);
        fs.chmodSync(target, f.mode);
    }
}

/** Waits (bounded) until a TCP connect to address:port succeeds. */
export async function waitForPort(address: string, port: number, timeoutMs: number, alive?: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
        const ok = await new Promise<boolean>((resolve) => {
            const s = net.connect({ host: address, port, timeout: 1000 });
            s.once("connect", () => {
                s.destroy();
                resolve(true);
            });
            s.once("error", () => resolve(false));
            s.once("timeout", () => {
                s.destroy();
                resolve(false);
            });
        });
        if (ok) return;
        if (alive && !alive()) throw new Error(`the process that should listen on ${address}:${port} exited`);
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nothing listens on ${address}:${port} after ${timeoutMs} ms`);
}

/** True when `pid` is a live (not zombie) process. */
export function alive(pid: number): boolean {
    if (!(pid > 0)) return false;
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return !/^\d+ \(.*\) Z/.test(stat);
    } catch {
        return false;
    }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readPid(file: string): number | undefined {
    try {
        const n = Number(fs.readFileSync(file, "utf8").trim());
        return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
        return undefined;
    }
}

/**
 * The host's PID 1 (its systemd) as seen from the machine, or undefined while it is off or not yet
 * started: the child of the running nspawn, whose PID inside its own PID namespace is 1.
 */
export function initPid(h: LabHost): number | undefined {
    if (!alive(h.runPid)) return undefined;
    const nspawn = readPid(path.join(h.dir, "nspawn.pid"));
    if (nspawn === undefined || !alive(nspawn)) return undefined;
    let children: number[];
    try {
        children = fs.readFileSync(`/proc/${nspawn}/task/${nspawn}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        return undefined;
    }
    return children.find((c) => nsPids(c)?.[1] === 1);
}

/** A process's PIDs from the outermost to its own PID namespace (`NSpid:` in /proc/PID/status). */
export function nsPids(pid: number): number[] | undefined {
    try {
        const m = /^NSpid:\s+(.+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
        return m ? m[1].trim().split(/\s+/).map(Number) : undefined;
    } catch {
        return undefined;
    }
}

/** Every process of a host (its cgroup tree in the name=systemd hierarchy), as machine PIDs. */
export function hostProcesses(h: Pick<LabHost, "cgroup">): number[] {
    const out: number[] = [];
    for (const dir of cgroupTree(path.join(CGROUP_FS, "systemd", h.cgroup))) {
        try {
            out.push(...fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number));
        } catch {
            /* gone */
        }
    }
    return out.filter(alive);
}

/** A cgroup folder and every folder below it (at most 12 levels), children before their parent. */
function cgroupTree(root: string, depth = 0): string[] {
    if (depth > 12) return [];
    let entries: fs.Dirent[];
    try {
        entries = fs.readdirSync(root, { withFileTypes: true });
    } catch {
        return [];
    }
    return [...entries.filter((e) => e.isDirectory()).flatMap((e) => cgroupTree(path.join(root, e.name), depth + 1)), root];
}

/** The host-side PID of a process the host knows as `innerPid` (e.g. a unit's MainPID), if it runs. */
export function machinePid(h: LabHost, innerPid: number): number | undefined {
    return hostProcesses(h).find((p) => {
        const ns = nsPids(p);
        return ns !== undefined && ns.length > 1 && ns[ns.length - 1] === innerPid;
    });
}

/** nsenter arguments that run `argv` in every namespace of the host whose PID 1 is `pid`, as root, with the host's own PATH. */
function inHostArgs(pid: number, argv: readonly string[]): string[] {
    return ["-t", String(pid), "-a", "--", "env", "-i", `PATH=${HOST_PATH}`, "LANG=C", ...argv];
}

/** Runs a command inside a running host (all its namespaces, as root, its own PATH), returning its output; throws on failure. */
export function inHost(host: LabHost, argv: string[], input?: string, timeoutMs = 30_000): string {
    const pid = initPid(host);
    if (pid === undefined) throw new Error(`lab host ${host.name} is not running`);
    return execFileSync("nsenter", inHostArgs(pid, argv), { encoding: "utf8", input, timeout: timeoutMs });
}

/** Runs a command inside a running host like inHost, but never throws: its exit status and output (status null when the host is off). */
export function tryInHost(host: LabHost, argv: string[], timeoutMs = 30_000): { status: number | null; stdout: string } {
    const pid = initPid(host);
    if (pid === undefined) return { status: null, stdout: "" };
    const r = spawnSync("nsenter", inHostArgs(pid, argv), { encoding: "utf8", timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "" };
}

/** `systemctl is-system-running` inside the host (`offline` while its systemd does not answer yet). */
export function systemState(h: LabHost): string {
    if (initPid(h) === undefined) return "off";
    return tryInHost(h, ["systemctl", "is-system-running"], 10_000).stdout.trim() || "offline";
}

/**
 * Turns a host on: starts its power switch (host-run.sh) detached, recording its PID in `h.runPid`. The
 * host's files (hostname, sshd address, key, uid range) are (re)written into its overlay first.
 */
export function powerOn(h: LabHost, rootfs: string, pubkeyFile: string): void {
    if (alive(h.runPid)) throw new Error(`lab host ${h.name} is already on (power switch PID ${h.runPid})`);
    removeCgroups(h); // what a power cut left (the cgroups its systemd could not clean up)
    writeHostFiles(h, rootfs, pubkeyFile);
    fs.rmSync(path.join(h.dir, "stop"), { force: true });
    fs.rmSync(path.join(h.dir, "nspawn.pid"), { force: true });
    const log = fs.openSync(path.join(h.dir, "console.log"), "a");
    const child: ChildProcess = spawn("bash", [path.join(__dirname, "host-run.sh"), h.dir, h.name, h.machine, rootfs, h.cgroup], { detached: true, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    child.unref();
    if (child.pid === undefined) throw new Error(`lab host ${h.name}: could not start its power switch`);
    h.runPid = child.pid;
}

/**
 * Waits (bounded) until a host is up: its systemd answers and reports `running` (or, with
 * `allowStarting`, still `starting`: an etcd member waiting for its peers holds boot up), and its sshd
 * accepts connections. `degraded` fails, naming the failed units.
 */
export async function waitBooted(h: LabHost, opts: { timeoutMs?: number; allowStarting?: boolean } = {}): Promise<number> {
    const t0 = Date.now();
    const timeoutMs = opts.timeoutMs ?? 90_000;
    let state = "off";
    for (let i = 0; i < 2000 && Date.now() - t0 < timeoutMs; i++) {
        if (!alive(h.runPid)) break;
        state = systemState(h);
        if (state === "degraded") {
            let failed = "";
            try {
                failed = inHost(h, ["systemctl", "--failed", "--no-legend", "--plain"]).trim();
            } catch {
                /* keep the state */
            }
            throw new Error(`lab host ${h.name} booted degraded: ${failed || "(no failed unit listed)"}`);
        }
        if (state === "running" || (opts.allowStarting && state === "starting")) {
            await waitForPort(h.address, HOST_PORTS.ssh, Math.max(1000, timeoutMs - (Date.now() - t0)));
            return Date.now() - t0;
        }
        await sleep(100);
    }
    const tail = fs.existsSync(path.join(h.dir, "console.log")) ? fs.readFileSync(path.join(h.dir, "console.log"), "utf8").split("\n").slice(-20).join("\n") : "";
    throw new Error(`lab host ${h.name} did not boot within ${timeoutMs} ms (power switch ${alive(h.runPid) ? "on" : "off"}, systemd: ${state})\n${tail}`);
}

/** Creates one host (its dir and files), turns it on and waits until it has booted. */
/**
 * A new host, not yet booted: its name, address and dirs, and its SSH host key, made by the lab and put into
 * the host's overlay before its first boot — as cloud-init's `ssh_keys` gives a Proxmox VM the key the
 * program generated for it. The host's first-boot unit then makes no key of its own. The stack can pin the
 * key before the host answers, so `pulumi up` starts while the hosts boot.
 */
export function prepareHost(opts: { dir: string; index: number; prefix: string; rootfs: string }): LabHost {
    const name = hostName(opts.index);
    const h: LabHost = { name, address: hostAddress(opts.index, opts.prefix), index: opts.index, dir: path.join(opts.dir, "hosts", name), ...hostIds(opts.prefix, name), runPid: 0 };
    fs.mkdirSync(h.dir, { recursive: true, mode: 0o700 });
    const upper = path.join(h.dir, "upper");
    fs.mkdirSync(upper, { recursive: true, mode: 0o755 });
    const rel = "/etc/ssh/ssh_host_ed25519_key";
    mkdirsLike(upper, opts.rootfs, rel, { uid: 0, gid: 0 });
    const key = path.join(upper, rel);
    if (!fs.existsSync(key)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `root@${name}`, "-f", key]);
    fs.chmodSync(key, 0o600);
    fs.chmodSync(`${key}.pub`, 0o644);
    const pub = normalizeHostKey(fs.readFileSync(`${key}.pub`, "utf8"));
    if (!/^ssh-ed25519 \S+$/.test(pub)) throw new Error(`lab host ${name}: unexpected host key line ${JSON.stringify(pub)}`);
    h.hostKey = pub;
    return h;
}

/** Boots a prepared host (prepareHost) for the first time and waits until it is up; a host that fails to boot is cut. */
export async function bootNewHost(h: LabHost, opts: { pubkeyFile: string; rootfs: string }): Promise<LabHost> {
    powerOn(h, opts.rootfs, opts.pubkeyFile);
    try {
        await waitBooted(h);
    } catch (e) {
        await powerOff([h], "cut").catch(() => undefined);
        throw e;
    }
    return h;
}

/** A new host, booted (prepareHost, then bootNewHost). */
export async function createHost(opts: { dir: string; index: number; prefix: string; pubkeyFile: string; rootfs: string }): Promise<LabHost> {
    return bootNewHost(prepareHost(opts), opts);
}

/**
 * The host's public ed25519 host key, read inside the host (as an operator reads it on a VM's console), never
 * over the network: the one line of /etc/ssh/ssh_host_ed25519_key.pub, type and key only.
 */
export function readHostKey(h: LabHost): string {
    const line = inHost(h, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    const key = normalizeHostKey(line);
    if (!/^ssh-ed25519 \S+$/.test(key)) throw new Error(`lab host ${h.name}: unexpected host key line ${JSON.stringify(line.trim())}`);
    return key;
}

async function waitGone(pids: number[], ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && pids.some(alive)) await sleep(50);
}

/**
 * Turns hosts off. "shutdown": systemd inside halts cleanly (nspawn's SIGTERM → SIGRTMIN+3), bounded;
 * "cut": a power cut, every process of the host killed at once (SIGKILL to its PID 1 ends its PID
 * namespace). Either way a host still running afterwards is cut, and each power switch is waited for.
 * Only the lab's own processes are signalled: each host's power switch, its nspawn and the host's PID 1.
 */
export async function powerOff(hosts: readonly LabHost[], how: "shutdown" | "cut"): Promise<void> {
    const on = hosts.filter((h) => alive(h.runPid));
    for (const h of on) fs.writeFileSync(path.join(h.dir, "stop"), "");
    const kill = (pid: number | undefined, sig: NodeJS.Signals) => {
        if (pid === undefined) return;
        try {
            process.kill(pid, sig);
        } catch {
            /* already gone */
        }
    };
    if (how === "shutdown") {
        for (const h of on) kill(readPid(path.join(h.dir, "nspawn.pid")), "SIGTERM");
        await waitGone(
            on.map((h) => h.runPid),
            20_000,
        );
    }
    for (const h of on.filter((x) => alive(x.runPid))) kill(initPid(h), "SIGKILL");
    await waitGone(
        on.map((h) => h.runPid),
        10_000,
    );
    for (const h of on.filter((x) => alive(x.runPid))) {
        kill(readPid(path.join(h.dir, "nspawn.pid")), "SIGKILL");
        kill(h.runPid, "SIGKILL");
    }
    await waitGone(
        on.map((h) => h.runPid),
        5_000,
    );
    const left = on.filter((h) => alive(h.runPid) || hostProcesses(h).length > 0);
    if (left.length > 0) throw new Error(`lab hosts still running after SIGKILL: ${left.map((h) => `${h.name} (${[h.runPid, ...hostProcesses(h)].join(", ")})`).join("; ")}`);
    for (const h of hosts) h.runPid = 0;
}

/** Removes a host's cgroup folders (children first), then the lab's parents once empty. */
export function removeCgroups(h: Pick<LabHost, "cgroup">): void {
    for (const hier of HIERARCHIES) {
        for (const dir of cgroupTree(path.join(CGROUP_FS, hier, h.cgroup))) {
            try {
                fs.rmdirSync(dir);
            } catch {
                /* busy or gone: reported by the caller's check */
            }
        }
        // The range folder and the lab root, if no other lab uses them.
        for (let p = path.dirname(h.cgroup); p !== "." && p !== "/"; p = path.dirname(p)) {
            try {
                fs.rmdirSync(path.join(CGROUP_FS, hier, p));
            } catch {
                break;
            }
        }
    }
}

/**
 * Ends the given hosts (by default a clean shutdown, cut after a bound; or a power cut) and removes their
 * cgroups. Returns the PIDs that ran in them (the hosts' processes, their nspawn and power switch).
 */
export async function stopHosts(hosts: readonly LabHost[], how: "shutdown" | "cut" = "shutdown"): Promise<number[]> {
    const pids = [...new Set(hosts.flatMap((h) => (alive(h.runPid) ? [h.runPid, ...hostProcesses(h)] : [])))];
    await powerOff(hosts, how);
    for (const h of hosts) removeCgroups(h);
    return pids;
}
