/**
 * Lab hosts: N isolated "machines" on this one, each with its own loopback address (127.66.0.11, .12, …),
 * its own sshd (key auth, an admin user with passwordless sudo) and a private mount and UTS namespace in
 * which the paths the program writes are its own (see host-init.sh). Nothing listens on a non-loopback
 * address, so no packet can leave the machine.
 *
 * Everything the lab creates lives under the lab dir (default `<project>/.lab`, or $ETCD_HA_LAB_DIR);
 * `lab.json` there records every process the lab started, by PID, so `down` ends exactly those.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
/** The default address range: 127.66.0.0/24, hosts from .11. */
export const DEFAULT_PREFIX = "127.66.0";
export const FIRST_HOST = 11;
/** Most hosts one lab holds (each gets its own system uid range, see host-init.sh). */
export const MAX_HOSTS = 9;
/** The admin user on every lab host (Ubuntu cloud images' default user). */
export const ADMIN_USER = "ubuntu";
/** Ports every host uses: sshd and the etcd defaults. */
export const HOST_PORTS = { ssh: 22, client: 2379, peer: 2380, metrics: 2381 } as const;

/** One lab host as recorded in lab.json. */
export interface LabHost {
    name: string;
    address: string;
    index: number;
    /** The host's directory on the machine. */
    dir: string;
    /** PID of the host's sshd (also its namespace's first process). */
    sshdPid: number;
}

/** lab.json: what `up` created. */
export interface LabRecord {
    version: 1;
    createdAt: string;
    prefix: string;
    admin: string;
    hosts: LabHost[];
}

export function labDir(): string {
    return process.env.ETCD_HA_LAB_DIR ?? path.join(PROJECT_ROOT, ".lab");
}

export const labFile = (dir = labDir()) => path.join(dir, "lab.json");

export function readLab(dir = labDir()): LabRecord | undefined {
    const f = labFile(dir);
    if (!fs.existsSync(f)) return undefined;
    return JSON.parse(fs.readFileSync(f, "utf8")) as LabRecord;
}

export function writeLab(rec: LabRecord, dir = labDir()): void {
    fs.writeFileSync(labFile(dir), JSON.stringify(rec, null, 2) + "\n");
}

/** Commands the lab needs, with the Debian package that provides each. */
export const LAB_COMMANDS: readonly [string, string][] = [
    ["/usr/sbin/sshd", "openssh-server"],
    ["ssh-keygen", "openssh-client"],
    ["sudo", "sudo"],
    ["iptables", "iptables"],
    ["etcd", "etcd-server"],
    ["etcdctl", "etcd-client"],
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["python3", "python3"],
    ["ss", "iproute2"],
    ["ps", "procps"],
    ["openssl", "openssl"],
];

const missingPackages = () => [...new Set(LAB_COMMANDS.filter(([cmd]) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0).map(([, pkg]) => pkg))];

/**
 * Checks this is Linux and root, and that every lab command is present. Missing packages are installed
 * with apt-get (tools/install-os-deps.sh) on Debian/Ubuntu; otherwise it fails naming what to install.
 */
export function preflight(): void {
    if (process.platform !== "linux") throw new Error("the lab needs Linux (mount and UTS namespaces, loopback addresses)");
    if (process.getuid?.() !== 0) throw new Error("the lab needs root (namespaces, mounts, sshd, iptables): run it as root");
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
}

export function hostAddress(index: number, prefix = DEFAULT_PREFIX): string {
    return `${prefix}.${FIRST_HOST + index}`;
}

export function hostName(index: number): string {
    return `etcd${index + 1}`;
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

/** sshd_config of one host: key-only, Ubuntu's AcceptEnv, OpenSSH's own sftp-server, no PAM. */
export function renderSshdConfig(h: { address: string; dir: string }): string {
    return [
        "# etcd-ha lab host sshd (key-only, like a cloud-init VM)",
        `ListenAddress ${h.address}:${HOST_PORTS.ssh}`,
        `HostKey ${h.dir}/sshd/ssh_host_ed25519_key`,
        "PidFile none",
        "UsePAM no",
        "PermitRootLogin no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "StrictModes yes",
        "AcceptEnv LANG LC_*",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "LogLevel INFO",
        "",
    ].join("\n");
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

/** The systemctl/journalctl stand-in every host gets. */
export const STANDIN = path.join(__dirname, "standin", "systemctl.py");

/** Creates one host: its dir, sshd config and host key, then its namespace and sshd. */
export async function createHost(opts: { dir: string; index: number; prefix: string; pubkeyFile: string; standin?: string }): Promise<LabHost> {
    const name = hostName(opts.index);
    const address = hostAddress(opts.index, opts.prefix);
    const dir = path.join(opts.dir, "hosts", name);
    fs.mkdirSync(path.join(dir, "sshd"), { recursive: true, mode: 0o700 });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}-host`, "-f", path.join(dir, "sshd", "ssh_host_ed25519_key")]);
    fs.writeFileSync(path.join(dir, "sshd", "sshd_config"), renderSshdConfig({ address, dir }));
    const log = fs.openSync(path.join(dir, "host.log"), "a");
    const child: ChildProcess = spawn(
        "unshare",
        [
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "/bin/bash",
            path.join(__dirname, "host-init.sh"),
            dir,
            name,
            address,
            ADMIN_USER,
            String(opts.index),
            opts.standin ?? STANDIN,
            opts.pubkeyFile,
        ],
        { detached: true, stdio: ["ignore", log, log] },
    );
    fs.closeSync(log);
    let exited: number | null = null;
    child.once("exit", (code) => (exited = code ?? -1));
    child.unref();
    if (child.pid === undefined) throw new Error(`lab host ${name}: could not start unshare`);
    try {
        await waitForPort(address, HOST_PORTS.ssh, 15_000, () => exited === null);
    } catch (e) {
        const tail = fs.readFileSync(path.join(dir, "host.log"), "utf8").split("\n").slice(-15).join("\n");
        throw new Error(`lab host ${name} did not come up: ${(e as Error).message}\n${tail}`);
    }
    return { name, address, index: opts.index, dir, sshdPid: child.pid };
}

/** True when `pid` is a live (not zombie) process. */
export function alive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return !/^\d+ \(.*\) Z/.test(stat);
    } catch {
        return false;
    }
}

/** PIDs of every process in the same mount namespace as `pid` (the host's processes), `pid` included. */
export function namespaceProcesses(pid: number): number[] {
    let ns: string;
    try {
        ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
        return [];
    }
    const out: number[] = [];
    for (const e of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(e)) continue;
        try {
            if (fs.readlinkSync(`/proc/${e}/ns/mnt`) === ns) out.push(Number(e));
        } catch {
            /* gone */
        }
    }
    return out;
}

/** Runs a command inside a host's namespaces (as root), returning its output; throws on failure. */
export function inHost(host: LabHost, argv: string[], input?: string): string {
    return execFileSync("nsenter", ["-t", String(host.sshdPid), "-m", "-u", "--", ...argv], { encoding: "utf8", input, timeout: 30_000 });
}

/**
 * Ends every process of the given hosts: TERM, then KILL after a bounded wait. Only processes in a lab
 * host's own mount namespace are signalled (found from its sshd's PID), and never this process.
 */
export async function stopHosts(hosts: readonly LabHost[]): Promise<number[]> {
    const pids = hosts.flatMap((h) => (alive(h.sshdPid) ? namespaceProcesses(h.sshdPid) : [])).filter((p) => p !== process.pid);
    const signal = (sig: NodeJS.Signals) => {
        for (const p of pids) {
            try {
                process.kill(p, sig);
            } catch {
                /* already gone */
            }
        }
    };
    signal("SIGTERM");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
    signal("SIGKILL");
    const deadline2 = Date.now() + 3000;
    while (Date.now() < deadline2 && pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
    const left = pids.filter(alive);
    if (left.length > 0) throw new Error(`lab processes still running after SIGKILL: ${left.join(", ")}`);
    return pids;
}
