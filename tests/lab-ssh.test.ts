/**
 * One real lab host (an nspawn machine with real systemd, its own sshd and admin user), reached over SSH as
 * the command provider reaches a VM: it is a machine of its own, has no etcd until the program installs it,
 * and its sshd is what a cloud image's is (key-only, one listen address, AcceptEnv LANG LC_*).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "ssh2";
import { ADMIN_USER, createHost, ensureRootfs, hostProcesses, inHost, initPid, LabHost, nsPids, preflight, stopHosts } from "../tools/lab/hosts";

const PREFIX = "127.66.1";
let dir: string;
let host: LabHost;
let privateKey: string;

/** Runs `command` on the host over SSH (bounded); its stdout. */
function run(command: string): Promise<{ stdout: string; code: number }> {
    return new Promise((resolve, reject) => {
        const c = new Client();
        const timer = setTimeout(() => (c.end(), reject(new Error(`ssh ${host.address}: no answer in 30s`))), 30_000);
        c.on("error", (e) => (clearTimeout(timer), reject(e)));
        c.on("ready", () =>
            c.exec(command, (err, ch) => {
                if (err) return (clearTimeout(timer), c.end(), reject(err));
                let stdout = "";
                ch.on("data", (d: Buffer) => (stdout += d.toString()));
                ch.stderr.on("data", () => undefined);
                ch.on("close", (code: number) => (clearTimeout(timer), c.end(), resolve({ stdout, code })));
            }),
        );
        c.connect({ host: host.address, port: 22, username: ADMIN_USER, privateKey, readyTimeout: 15_000 });
    });
}

beforeAll(async () => {
    preflight();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-ssh-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "id_ed25519")]);
    host = await createHost({ dir, index: 0, prefix: PREFIX, pubkeyFile: path.join(dir, "id_ed25519.pub"), rootfs: ensureRootfs() });
    privateKey = fs.readFileSync(path.join(dir, "id_ed25519"), "utf8");
}, 180_000);

afterAll(async () => {
    if (host) await stopHosts([host]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("a lab host", () => {
    test("is its own machine: real systemd as PID 1, hostname, machine-id, admin user with passwordless sudo, its etcd disk", async () => {
        const r = await run("hostname; id -un; sudo -n id -u; cat /proc/1/comm; systemctl is-system-running; findmnt -n -o TARGET /var/lib/etcd; findmnt -n -o FSTYPE /; cat /etc/machine-id");
        const [name, user, rootUid, init, state, etcdDisk, rootFs, machineId] = r.stdout.trim().split("\n");
        expect([name, user, rootUid, init, state, etcdDisk, rootFs]).toEqual([host.name, ADMIN_USER, "0", "systemd", "running", "/var/lib/etcd", "overlay"]);
        expect(machineId).toMatch(/^[0-9a-f]{32}$/);
        expect(machineId).not.toBe(fs.readFileSync("/etc/machine-id", "utf8").trim());
        // PID 1 of the host is the child of its nspawn, and every process of the host is in the host's cgroup.
        const init1 = initPid(host)!;
        expect(nsPids(init1)).toEqual([init1, 1]);
        expect(fs.readFileSync(`/proc/${init1}/comm`, "utf8").trim()).toBe("systemd");
        expect(hostProcesses(host)).toContain(init1);
        // The machine's own paths are untouched by what the host writes.
        await run("sudo -n touch /usr/local/bin/etcd-ha-lab-probe /etc/etcd-ha-lab-probe");
        expect(fs.existsSync("/usr/local/bin/etcd-ha-lab-probe")).toBe(false);
        expect(fs.existsSync("/etc/etcd-ha-lab-probe")).toBe(false);
        expect(inHost(host, ["ls", "/usr/local/bin/etcd-ha-lab-probe"]).trim()).toBe("/usr/local/bin/etcd-ha-lab-probe");
    });

    test("has no etcd (user, binary, unit) until the program installs it, and then a uid of its own range", async () => {
        const r = await run(
            "getent passwd etcd || echo none; [ -x /usr/bin/etcd ] || echo no-binary; [ -e /lib/systemd/system/etcd.service ] || echo no-unit; " +
                "sudo -n useradd --system --no-create-home --shell /usr/sbin/nologin etcd; id -u etcd",
        );
        const [before, binary, unit, uid] = r.stdout.trim().split("\n");
        expect([before, binary, unit]).toEqual(["none", "no-binary", "no-unit"]);
        expect(Number(uid)).toBeGreaterThanOrEqual(900);
        expect(Number(uid)).toBeLessThanOrEqual(909);
    });

    test("sshd is key-only and listens only on the host's address; its host keys are its own", async () => {
        const r = await run("sudo -n sshd -T | grep -Ei '^(listenaddress|passwordauthentication|kbdinteractiveauthentication|permitrootlogin|acceptenv) '");
        const t = r.stdout.toLowerCase();
        expect(t).toContain(`listenaddress ${host.address}:22`);
        expect(t).toContain("passwordauthentication no");
        expect(t).toContain("kbdinteractiveauthentication no");
        expect(t).toContain("permitrootlogin no");
        expect(t).toMatch(/acceptenv lang\nacceptenv lc_\*/);
        expect(r.stdout.match(/^listenaddress /gim)).toHaveLength(1);
        const pub = inHost(host, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
        expect(fs.readdirSync(path.join(host.dir, "upper", "etc", "ssh")).filter((f) => f.startsWith("ssh_host_"))).toContain("ssh_host_ed25519_key.pub");
        expect(pub).toMatch(/^ssh-ed25519 /);
    });
});
