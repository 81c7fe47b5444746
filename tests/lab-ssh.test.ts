/**
 * The engine stand-in's SSH layer against one real lab host (an nspawn machine with real systemd, its own
 * sshd and admin user), checked against what @pulumi/command v1.2.1 does (engine-fidelity.md §1.3–1.5, §2): the login
 * shell runs the command, no PTY, stdin then EOF, one trailing newline stripped, the provider's error
 * text, `environment` refused unless sshd AcceptEnv's it, SFTP copies with the SSH user's umask and no
 * sudo, and the dial retry budget.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "ssh2";
import { dial, execCommand, execError, goQuote, sftpCopy, SshConnection, trimOneNewline } from "../tools/lab/engine/ssh";
import { ADMIN_USER, createHost, ensureRootfs, hostProcesses, inHost, initPid, LabHost, nsPids, preflight, stopHosts } from "../tools/lab/hosts";

const PREFIX = "127.66.1";
let dir: string;
let host: LabHost;
let conn: SshConnection;

async function run(command: string, opts: { stdin?: string; environment?: Record<string, string> } = {}) {
    const c = await dial(conn);
    try {
        return await execCommand(c, command, opts);
    } finally {
        c.end();
    }
}

beforeAll(async () => {
    preflight();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-ssh-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "id_ed25519")]);
    host = await createHost({ dir, index: 0, prefix: PREFIX, pubkeyFile: path.join(dir, "id_ed25519.pub"), rootfs: ensureRootfs() });
    conn = { host: host.address, port: 22, user: ADMIN_USER, privateKey: fs.readFileSync(path.join(dir, "id_ed25519"), "utf8"), dialErrorLimit: 10, perDialTimeout: 15 };
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

describe("command execution as the provider does it", () => {
    test("the login shell runs the command without a PTY; stdout and stderr apart; one newline stripped", async () => {
        const r = await run('echo "$0"; [ -t 0 ] && echo tty || echo no-tty; echo err >&2; printf "last\\n\\n"');
        expect(r.code).toBe(0);
        expect(r.stdout).toBe("bash\nno-tty\nlast\n\n");
        expect(trimOneNewline(r.stdout)).toBe("bash\nno-tty\nlast\n");
        expect(r.stderr).toBe("err\n");
    });

    test("stdin is written and closed; without stdin the command sees EOF at once", async () => {
        expect((await run("wc -c", { stdin: "12345" })).stdout.trim()).toBe("5");
        const t = Date.now();
        expect((await run("cat; echo done")).stdout).toBe("done\n");
        expect(Date.now() - t).toBeLessThan(5000);
    });

    test("a non-zero exit gives `Process exited with status N: running \"<cmd>\":` and the interleaved output", async () => {
        const cmd = "echo out; echo 'bad thing' >&2; exit 3";
        const r = await run(cmd);
        expect(r.code).toBe(3);
        expect(execError(cmd, r)).toBe(`Process exited with status 3: running ${goQuote(cmd)}:\nout\nbad thing\n`);
        expect(goQuote('a "b"\n\tc\\')).toBe('"a \\"b\\"\\n\\tc\\\\"');
        expect(execError("true", { code: 0, stdout: "", stderr: "", combined: "" })).toBeUndefined();
    });

    test("environment: refused by sshd unless AcceptEnv'd (Ubuntu accepts LANG and LC_*), which fails the command", async () => {
        await expect(run("echo $FOO", { environment: { FOO: "bar" } })).rejects.toThrow('could not set environment variable "FOO": ssh: setenv failed');
        const ok = await run('echo "$LANG/$LC_ALL"', { environment: { LANG: "C.UTF-8", LC_ALL: "C" } });
        expect(ok.stdout).toBe("C.UTF-8/C\n");
    });

    test("a background process holding stdout keeps the step running (the provider waits for channel close)", async () => {
        const t = Date.now();
        await run("(sleep 2; echo late) &");
        expect(Date.now() - t).toBeGreaterThanOrEqual(1900);
    });
});

describe("SFTP copy as CopyToRemote does it", () => {
    test("creates parents, writes 0644 as the SSH user (no sudo, no mode kept), keeps an existing file's mode", async () => {
        const local = path.join(dir, "payload.bin");
        fs.writeFileSync(local, "payload\n", { mode: 0o755 });
        const c = await dial(conn);
        try {
            expect(await sftpCopy(c, { kind: "file", path: local }, "/var/tmp/etcd-ha/x/payload.bin")).toBe("/var/tmp/etcd-ha/x/payload.bin");
            // An existing directory as remotePath: the file goes inside it.
            expect(await sftpCopy(c, { kind: "file", path: local }, "/var/tmp/etcd-ha/x")).toBe("/var/tmp/etcd-ha/x/payload.bin");
            await expect(sftpCopy(c, { kind: "file", path: local }, "/etc/etcd-ha-denied/payload.bin")).rejects.toThrow(/sftp/);
        } finally {
            c.end();
        }
        const st = await run("stat -c '%a %U' /var/tmp/etcd-ha/x/payload.bin /var/tmp/etcd-ha/x; cat /var/tmp/etcd-ha/x/payload.bin");
        expect(st.stdout).toBe(`644 ${ADMIN_USER}\n755 ${ADMIN_USER}\npayload\n`);
        await run("chmod 600 /var/tmp/etcd-ha/x/payload.bin");
        const c2 = await dial(conn);
        try {
            await sftpCopy(c2, { kind: "text", text: "v2\n" }, "/var/tmp/etcd-ha/x/payload.bin");
        } finally {
            c2.end();
        }
        expect((await run("stat -c %a /var/tmp/etcd-ha/x/payload.bin; cat /var/tmp/etcd-ha/x/payload.bin")).stdout).toBe("600\nv2\n");
    });
});

describe("dialling as the provider does it", () => {
    test("a refused port is retried dialErrorLimit times with 100 ms × 1.5ⁿ sleeps, then `after N failed attempts`", async () => {
        const retries: string[] = [];
        const t = Date.now();
        await expect(dial({ ...conn, port: 2222, dialErrorLimit: 3 }, { onRetry: (m) => retries.push(m) })).rejects.toThrow(
            /^after 3 failed attempts: dial tcp 127\.66\.1\.11:2222: connect: connection refused$/,
        );
        expect(retries).toEqual(["Dial 1/3 failed: retrying", "Dial 2/3 failed: retrying", "Dial 3/3 failed: retrying"]);
        // 100 + 150 + 225 ms of sleeping.
        expect(Date.now() - t).toBeGreaterThanOrEqual(470);
    });

    test("a wrong key fails authentication (no agent is consulted without SSH_AUTH_SOCK)", async () => {
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "other")]);
        const saved = process.env.SSH_AUTH_SOCK;
        delete process.env.SSH_AUTH_SOCK;
        try {
            await expect(dial({ ...conn, privateKey: fs.readFileSync(path.join(dir, "other"), "utf8"), dialErrorLimit: 0 })).rejects.toThrow(/after 0 failed attempts: ssh: handshake failed: All configured authentication methods failed/);
        } finally {
            if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
        }
    });

    test("a key that does not parse fails at once, without retries", async () => {
        const t = Date.now();
        await expect(dial({ ...conn, privateKey: "not a key" })).rejects.toThrow(/^ssh: /);
        expect(Date.now() - t).toBeLessThan(1000);
    });

    test("hostKey, when given, is the only key accepted", async () => {
        const pub = inHost(host, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
        const c: Client = await dial({ ...conn, hostKey: pub });
        c.end();
        const other = fs.readFileSync(path.join(dir, "id_ed25519.pub"), "utf8");
        // x/crypto's FixedHostKey error, as the provider reports it.
        await expect(dial({ ...conn, hostKey: other, dialErrorLimit: 0 })).rejects.toThrow(/failed attempts: ssh: handshake failed: ssh: host key mismatch$/);
        // The pinned key's type is the only host-key algorithm offered: an ECDSA pin never sees the ed25519 key.
        const ecdsa = inHost(host, ["cat", "/etc/ssh/ssh_host_ecdsa_key.pub"]);
        const e: Client = await dial({ ...conn, hostKey: ecdsa });
        e.end();
    });
});
