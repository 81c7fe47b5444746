/**
 * The lab, end to end: `npm run lab -- up` boots three hosts (systemd-nspawn machines with real systemd,
 * each with its own loopback address, sshd, overlay and etcd disk) and runs index.ts under the engine stand-in, which really runs every remote
 * command over SSH, makes real certificates and installs etcd 3.5 (built from the Go module proxy) through the air-gapped path; then
 * the real cluster is checked from this machine: health, mTLS refusals, CIS, secrets, re-runs, faults
 * with a continuous writer (including a member's reboot and a power cut of every member), and `down`.
 *
 * The lab runs in a lab dir and address range of its own (127.66.2.0/24), so an operator's lab in .lab
 * is never touched. The one setting that differs from production is listed in the stack file the lab
 * writes (listenLocalhost: false, peerCertSans: [localhost]), and asserted below.
 */
import { spawn, spawnSync, SpawnSyncReturns } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { Etcd3 } from "etcd3";
import { chainOf, heal, isolate } from "../tools/lab/faults/partition";
import { ClientTls, ContinuousWriter, findLeader, formatFigures, nowMs, verifyAcknowledged, waitForNewLeader, WriterReport } from "../tools/lab/faults/writer";
import { httpGet } from "./helpers/http";
import { expectNoChanges, isCiphertext, labCli, LabPulumi, labPulumiCli, stackExport, WRITER_PAUSE_MS } from "./helpers/labSuite";
import { alive, CGROUP_ROOT, hostProcesses, inHost, initPid, LabHost, LabRecord, nsPids, preflight } from "../tools/lab/hosts";
import { powerCut, powerOnHosts, rebootHost } from "../tools/lab/lab";

const PREFIX = "127.66.2";
const LAB = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-test-"));
// The lab module's power functions (reboot, power cut, power on) act on this lab: it reads its dir at each call.
process.env.ETCD_HA_LAB_DIR = LAB;

interface Status {
    members: { name: string; clientUrl: string; pid: number | null; healthy: boolean; leader: boolean }[];
    endpoints: string[];
    client: { cacert: string; cert: string; key: string };
    pulumi: LabPulumi;
}

function cli(args: string[], timeoutMs = 300_000): SpawnSyncReturns<string> {
    return labCli(LAB, args, timeoutMs);
}

function statusJson(): Status {
    const r = cli(["status", "--json"], 60_000);
    if (r.status !== 0) throw new Error(`lab status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Status;
}

/** The lab stack's resources as the real engine keeps them (`pulumi stack export`, run as `status --json` says). */
const stateResources = () => stackExport(statusJson().pulumi).resources.filter((r) => r.type !== "pulumi:pulumi:Stack");

const lab = (): LabRecord => JSON.parse(fs.readFileSync(path.join(LAB, "lab.json"), "utf8")) as LabRecord;
const hostOf = (name: string): LabHost => lab().hosts.find((h) => h.name === name)!;

let st: Status;
let tls: ClientTls;
/** The faults' writer: the lab's client TLS, a 1 s deadline per put and the lab suites' pause between puts. */
const faultWriter = (endpoints: string[], prefix: string) => new ContinuousWriter({ endpoints, tls, prefix, opTimeoutMs: 1000, pauseMs: WRITER_PAUSE_MS });
const upOutput: string[] = [];

/** etcdctl from this machine with the admin client (or other credentials). */
function ctl(endpoints: string[], args: string[], creds: Partial<ClientTls> | null = tls, timeoutMs = 20_000): SpawnSyncReturns<string> {
    const auth = creds ? [`--cacert=${creds.cacert}`, ...(creds.cert ? [`--cert=${creds.cert}`, `--key=${creds.key}`] : [])] : [];
    return spawnSync("etcdctl", [`--endpoints=${endpoints.join(",")}`, ...auth, "--dial-timeout=2s", "--command-timeout=3s", ...args], {
        encoding: "utf8",
        env: { ...process.env, ETCDCTL_API: "3" },
        timeout: timeoutMs,
    });
}

/** etcdctl without blocking the event loop (while a writer in this process runs). */
function ctlAsync(endpoints: string[], args: string[]): Promise<{ status: number | null; stdout: string }> {
    return new Promise((resolve) => {
        const child = spawn("etcdctl", [`--endpoints=${endpoints.join(",")}`, `--cacert=${tls.cacert}`, `--cert=${tls.cert}`, `--key=${tls.key}`, "--dial-timeout=2s", "--command-timeout=3s", ...args], {
            env: { ...process.env, ETCDCTL_API: "3" },
        });
        let stdout = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout });
        });
    });
}


/** The longest stretch without an acknowledged write after the fault, in ms. */
const pause = (r: WriterReport, faultAt: number) => Math.round(r.largestGapSince?.(faultAt) ?? r.largestGapMs);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until every listed member is healthy. */
async function waitHealthy(endpoints: string[], timeoutMs = 30_000): Promise<number> {
    const t = Date.now();
    for (let i = 0; i < 200 && Date.now() - t < timeoutMs; i++) {
        if (ctl(endpoints, ["endpoint", "health"]).status === 0) return Date.now() - t;
        await sleep(250);
    }
    throw new Error(`members not healthy after ${timeoutMs} ms: ${ctl(endpoints, ["endpoint", "health"]).stderr}`);
}

const ppid = (pid: number) => Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
const comm = (pid: number) => fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();

/** The options (`ro`/`rw`, …) of the mount at `target` as the process `pid` sees it (its mount namespace). */
function mountOptions(pid: number, target: string): string[] | undefined {
    const line = fs
        .readFileSync(`/proc/${pid}/mountinfo`, "utf8")
        .split("\n")
        .filter((l) => l.split(" ")[4] === target)
        .pop();
    return line?.split(" ")[5].split(",");
}

function cmdline(pid: number): string[] {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

function flagValue(args: string[], name: string, environ: Record<string, string>): string | undefined {
    for (const a of args) {
        if (a === `--${name}`) return "true";
        if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
    }
    return environ[`ETCD_${name.toUpperCase().replace(/-/g, "_")}`];
}

function environOf(pid: number): Record<string, string> {
    return Object.fromEntries(
        fs
            .readFileSync(`/proc/${pid}/environ`, "utf8")
            .split("\0")
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
}

/**
 * What the lab must never change on this machine: the account, host and name-service files of its /etc, and
 * what is in the dirs the program writes on a member (units, binaries, data, backups) and in nspawn's /run.
 */
function machineFingerprint(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hosts", "/etc/hostname", "/etc/machine-id", "/etc/nsswitch.conf", "/etc/login.defs", "/etc/fstab"]) {
        out[f] = fs.existsSync(f) ? createHash("sha256").update(fs.readFileSync(f)).digest("hex") : "absent";
    }
    for (const d of ["/etc", "/etc/systemd/system", "/etc/sudoers.d", "/etc/ssh", "/usr/local/bin", "/usr/local/sbin", "/var/lib", "/var/backups", "/run/systemd", "/run/systemd/nspawn"]) {
        out[d] = fs.existsSync(d) ? fs.readdirSync(d).sort().join(" ") : "absent";
    }
    return out;
}
const machineBefore = machineFingerprint();

beforeAll(() => {
    preflight();
    const r = cli(["up", "--members", "3", "--prefix", PREFIX]);
    upOutput.push(r.stdout, r.stderr);
    if (r.status !== 0) throw new Error(`lab up failed (${r.status}):\n${r.stdout.split("\n").slice(-40).join("\n")}\n${r.stderr}`);
    st = statusJson();
    tls = st.client;
}, 420_000);

afterAll(() => {
    heal(PREFIX);
    const r = cli(["down"], 120_000);
    if (r.status !== 0) console.error(`lab down failed: ${r.stderr}`);
    fs.rmSync(LAB, { recursive: true, force: true });
}, 150_000);

describe("bootstrap", () => {
    test("no TLS errors in the members' logs before any client is refused (a wrong key usage shows only there)", () => {
        for (const m of st.members) {
            const log = inHost(hostOf(m.name), ["journalctl", "-u", "etcd", "--no-pager"]);
            expect(log).toMatch(/serving client requests|serving client traffic securely/);
            expect(log).not.toMatch(/incompatible key usage|bad certificate|unknown authority/);
        }
    });

    test("every etcd runs under its host's real systemd: Type=notify unit, the host's PID 1 as parent, the unit's sandbox", () => {
        for (const m of st.members) {
            const h = hostOf(m.name);
            const init = initPid(h)!;
            // The host's PID 1 is systemd (PID 1 in its own PID namespace), and etcd is its child.
            expect(comm(init)).toBe("systemd");
            expect(nsPids(init)).toEqual([init, 1]);
            expect(ppid(m.pid!)).toBe(init);
            expect(hostProcesses(h)).toContain(m.pid);
            const show = Object.fromEntries(
                inHost(h, ["systemctl", "show", "etcd", "-p", "Type", "-p", "ActiveState", "-p", "SubState", "-p", "MainPID", "-p", "User", "-p", "UnitFileState"])
                    .trim()
                    .split("\n")
                    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
            );
            expect(show).toEqual({ Type: "notify", ActiveState: "active", SubState: "running", MainPID: String(nsPids(m.pid!)!.at(-1)), User: "etcd", UnitFileState: "enabled" });
            // ProtectSystem=strict with ReadWritePaths=<data dir>, PrivateTmp: real mount namespacing by systemd.
            expect(mountOptions(m.pid!, "/")).toContain("ro");
            expect(mountOptions(m.pid!, "/var/lib/etcd")).toContain("rw");
            expect(mountOptions(m.pid!, "/tmp")).toBeDefined();
            expect(fs.readlinkSync(`/proc/${m.pid}/ns/mnt`)).not.toBe(fs.readlinkSync(`/proc/${init}/ns/mnt`));
        }
    });

    test("the program's units pass the host's own `systemd-analyze verify`; etcd's sandbox rates at most 2.0 in `systemd-analyze security`", () => {
        for (const m of st.members) {
            const units = ["etcd.service", "etcd-ha-snapshot.service", "etcd-ha-snapshot.timer"].map((u) => `/etc/systemd/system/${u}`);
            const out = inHost(hostOf(m.name), ["sh", "-c", `systemd-analyze verify ${units.join(" ")} 2>&1; echo "exit $?"`]);
            expect(out).toBe("exit 0\n");
            // The sandbox as the host's systemd rates it (8.3 "EXPOSED" without UNIT_SANDBOX).
            const rating = /Overall exposure level for etcd\.service: (\d+\.\d)/.exec(inHost(hostOf(m.name), ["systemd-analyze", "security", "etcd.service", "--no-pager"]));
            expect(Number(rating![1])).toBeLessThanOrEqual(2.0);
        }
    });

    test("up ran the program on the real engine: every resource created with progress lines, the health gate passed, a bootstrap time", () => {
        const out = upOutput[0];
        // The CLI's own progress (non-interactive display), then each command's output lines as `<resource> | <line>`.
        expect(out).toMatch(/^Updating \(lab\):$/m);
        expect(out).toMatch(/^ \+ {2}command:remote:Command etcd-etcd1-prepare created \(\d+(\.\d+)?s\)/m);
        expect(out).toMatch(/^ \+ {2}command:remote:CopyToRemote etcd-etcd3-tarball created \(/m);
        expect(out).toMatch(/^ \+ {2}tls:index:LocallySignedCert etcd-pki-etcd2-peer created \(/m);
        expect(out).toMatch(/^ \+ {2}command:remote:Command etcd-health created \(/m);
        expect(out).toMatch(/^etcd-etcd2-start \| started etcd: bootstrapping a new cluster/m);
        const all = stateResources().filter((r) => !r.type.startsWith("pulumi:providers:"));
        const custom = all.filter((r) => r.custom).length;
        expect(custom).toBeGreaterThan(40);
        // The engine's own count: every resource but the default providers, the stack included.
        expect(out).toMatch(new RegExp(`^ {4}\\+ ${all.length + 1} created$`, "m"));
        expect(out).toContain(`lab: ${custom} created, 0 updated, 0 replaced, 0 deleted, 0 re-run, 0 unchanged; pulumi up `);
        expect(out).toMatch(/bootstrap \(up start → health gate passed\) \d+\.\ds/);
        expect(out).toMatch(/lab: health gate: healthy: 3\/3 members/);
    });

    test("the air-gapped path installed etcd 3.5 (built from the Go module proxy) from a release-layout tarball verified by sha256", () => {
        const stack = YAML.parse(fs.readFileSync(path.join(LAB, "Pulumi.lab.yaml"), "utf8")) as {
            config: Record<string, { version: string; install: { method: string; tarball: string; sha256: string }; listenLocalhost: boolean; pki: { peerCertSans: string[] } }>;
        };
        const etcd = stack.config["etcd-ha:etcd"];
        expect(etcd.install.method).toBe("push");
        // The two lab-only settings (one shared network stack), and nothing else differs from production.
        expect(etcd.listenLocalhost).toBe(false);
        expect(etcd.pki.peerCertSans).toEqual(["localhost"]);
        expect(fs.readFileSync(`${etcd.install.tarball}.sha256`, "utf8")).toContain(etcd.install.sha256);
        const h = hostOf("etcd1");
        // The lab's default release line, built from the Go module proxy: the newest 3.5 patch.
        expect(etcd.version).toMatch(/^3\.5\.\d+$/);
        expect(path.basename(etcd.install.tarball)).toBe(`etcd-v${etcd.version}-linux-amd64.tar.gz`);
        expect(inHost(h, ["/usr/local/bin/etcd", "--version"])).toMatch(new RegExp(`^etcd Version: ${etcd.version.replace(/\./g, "\\.")}$`, "m"));
        expect(inHost(h, ["/usr/local/bin/etcdutl", "version"])).toContain(`etcdutl version: ${etcd.version}`);
        expect(inHost(h, ["sha256sum", "/var/tmp/etcd-ha/" + path.basename(etcd.install.tarball)]).split(" ")[0]).toBe(etcd.install.sha256);
        expect(upOutput[0]).toMatch(/sha256 verified/);
    });

    test("status --json: three healthy members with PIDs, exactly one leader, endpoints and client files", () => {
        expect(st.members.map((m) => m.name)).toEqual(["etcd1", "etcd2", "etcd3"]);
        expect(st.endpoints).toEqual(["https://127.66.2.11:2379", "https://127.66.2.12:2379", "https://127.66.2.13:2379"]);
        for (const m of st.members) {
            expect(m.healthy).toBe(true);
            expect(m.pid).not.toBeNull();
            expect(alive(m.pid!)).toBe(true);
            expect(cmdline(m.pid!)[0]).toBe("/usr/local/bin/etcd");
        }
        expect(st.members.filter((m) => m.leader)).toHaveLength(1);
        expect(fs.statSync(tls.key).mode & 0o777).toBe(0o600);
    });

    test("put/get with the exported endpoints and the admin certificate: etcdctl and the etcd3 client", async () => {
        expect(ctl(st.endpoints, ["put", "/lab/hello", "world"]).stdout.trim()).toBe("OK");
        expect(ctl([st.endpoints[2]], ["get", "/lab/hello", "--print-value-only"]).stdout.trim()).toBe("world");
        const client = new Etcd3({
            hosts: st.endpoints,
            credentials: { rootCertificate: fs.readFileSync(tls.cacert), certChain: fs.readFileSync(tls.cert), privateKey: fs.readFileSync(tls.key) },
        });
        try {
            await client.put("/lab/from-etcd3").value("v1");
            expect(await client.get("/lab/from-etcd3").string()).toBe("v1");
            expect(await client.get("/lab/hello").string()).toBe("world");
        } finally {
            client.close();
        }
    });

    test("refused: a client without a certificate, a client with a certificate from another CA, plain HTTP on 2379", async () => {
        expect(ctl(st.endpoints.slice(0, 1), ["get", "/lab/hello"], { cacert: tls.cacert }).status).not.toBe(0);
        const other = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-other-ca-"));
        try {
            const o = (args: string[]) => spawnSync("openssl", args, { cwd: other, stdio: "ignore" });
            o(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other-ca", "-days", "1", "-keyout", "ca.key", "-out", "ca.crt"]);
            o(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=etcd-admin/O=system:masters", "-keyout", "c.key", "-out", "c.csr"]);
            fs.writeFileSync(path.join(other, "ext"), "extendedKeyUsage=clientAuth\n");
            o(["x509", "-req", "-in", "c.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext", "-out", "c.crt"]);
            const r = ctl(st.endpoints.slice(0, 1), ["get", "/lab/hello"], { cacert: tls.cacert, cert: path.join(other, "c.crt"), key: path.join(other, "c.key") });
            expect(r.status).not.toBe(0);
            expect(r.stdout).not.toContain("world");
        } finally {
            fs.rmSync(other, { recursive: true, force: true });
        }
        await expect(httpGet("http://127.66.2.11:2379/health")).rejects.toThrow();
    });

    test("/health and /metrics answer on 2381 (plain HTTP, the member's own address)", async () => {
        for (const i of [11, 12, 13]) {
            const h = await httpGet(`http://127.66.2.${i}:2381/health`);
            // 3.5 adds "reason" ("" when healthy).
            expect(JSON.parse(h.body)).toMatchObject({ health: "true" });
            const m = await httpGet(`http://127.66.2.${i}:2381/metrics`);
            expect(m.body).toMatch(/^etcd_server_has_leader 1$/m);
        }
    });
});

describe("CIS (kube-bench section 2 and the file checks), read from the running members", () => {
    test("2.1–2.7 pass on every member, etcd runs as etcd, data dir 0700 etcd:etcd, keys 0600, unit 0600 root:root", () => {
        for (const m of st.members) {
            const pid = m.pid!;
            const args = cmdline(pid);
            const env = environOf(pid);
            const v = (f: string) => flagValue(args, f, env);
            // 2.1 / 2.4: cert and key for clients and peers
            expect(v("cert-file") && v("key-file")).toBeTruthy();
            expect(v("peer-cert-file") && v("peer-key-file")).toBeTruthy();
            // 2.2 / 2.5: client cert auth on both ports
            expect(v("client-cert-auth")).toBe("true");
            expect(v("peer-client-cert-auth")).toBe("true");
            // 2.3 / 2.6: no self-signed TLS
            expect([undefined, "false"]).toContain(v("auto-tls"));
            expect([undefined, "false"]).toContain(v("peer-auto-tls"));
            // 2.7: a trusted CA, the etcd CA (not the machine's)
            expect(v("trusted-ca-file")).toBe("/etc/etcd/pki/ca.crt");
            const h = hostOf(m.name);
            const issuer = inHost(h, ["openssl", "x509", "-noout", "-subject", "-in", "/etc/etcd/pki/ca.crt"]);
            expect(issuer).toMatch(/CN ?= ?etcd-ca/);
            // Runs as the host's etcd user, not root.
            const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
            expect(uid).not.toBe(0);
            expect(Number(inHost(h, ["id", "-u", "etcd"]).trim())).toBe(uid);
            // 1.1.11/1.1.12: data dir; keys; unit.
            const dataDir = v("data-dir")!;
            expect(inHost(h, ["stat", "-c", "%a %U:%G", dataDir]).trim()).toBe("700 etcd:etcd");
            const keys = inHost(h, ["sh", "-c", "stat -c '%n %a %U:%G' /etc/etcd/pki/*.key"]).trim().split("\n");
            expect(keys.length).toBeGreaterThanOrEqual(3);
            for (const k of keys) expect(k).toMatch(/ 600 etcd:etcd$/);
            for (const c of inHost(h, ["sh", "-c", "stat -c '%a' /etc/etcd/pki/*.crt"]).trim().split("\n")) expect(c).toBe("644");
            expect(inHost(h, ["stat", "-c", "%a %U:%G", "/etc/systemd/system/etcd.service"]).trim()).toBe("600 root:root");
            // No key material in the process's environment.
            expect(Object.values(env).join("\n")).not.toMatch(/PRIVATE KEY/);
        }
    });

});

describe("secrets", () => {
    test("no private key material in the stack's state (`pulumi stack export`), the lab log or the output; keys, stdin and connections are ciphertexts", () => {
        const exported = stackExport(statusJson().pulumi);
        const log = fs.readFileSync(path.join(LAB, "lab.log"), "utf8");
        for (const text of [exported.text, log, upOutput[0], upOutput[1]]) {
            expect(text).not.toMatch(/PRIVATE KEY/);
            expect(text).not.toMatch(/MHcCAQEE|MIGHAgEA|MIIE[a-zA-Z0-9+/]{20}/); // DER prefixes of EC/PKCS#8/RSA keys in base64
        }
        // The real engine wrote it.
        expect(exported.version).toBe("v3.248.0");
        const byName = new Map(exported.resources.map((r) => [r.name, r]));
        // Key-bearing fields are the secrets provider's ciphertexts, never plain.
        expect(isCiphertext(byName.get("etcd-pki-ca-key")!.outputs!.privateKeyPem)).toBe(true);
        expect(isCiphertext(byName.get("etcd-etcd1-certs")!.inputs!.stdin)).toBe(true);
        expect(isCiphertext(byName.get("etcd-etcd1-certs")!.inputs!.connection)).toBe(true);
        // The check can fail: a certificate (public) is plain text.
        expect(String(byName.get("etcd-pki-ca")!.outputs!.certPem)).toMatch(/^-----BEGIN CERTIFICATE-----/);
        for (const r of exported.resources.filter((x) => x.type === "command:remote:Command")) {
            expect(typeof r.inputs!.create).toBe("string");
            expect(String(r.inputs!.create)).not.toMatch(/PRIVATE KEY/);
            expect(r.inputs!.environment).toBeUndefined();
        }
    });
});

describe("re-run against the live cluster", () => {
    const pids = () => statusJson().members.map((m) => m.pid);
    const memberIds = () => ctl(st.endpoints, ["member", "list", "-w", "json"]).stdout;

    test("`pulumi preview --expect-no-changes` finds nothing to do; a second up changes nothing: no step runs, PIDs unchanged", () => {
        const before = pids();
        expectNoChanges(statusJson().pulumi);
        const r = cli(["up"]);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`lab: 0 created, 0 updated, 0 replaced, 0 deleted, 0 re-run, ${stateResources().filter((x) => x.custom && !x.type.startsWith("pulumi:providers:")).length} unchanged`);
        expect(r.stdout).toContain("health gate not run (nothing changed)");
        expect(pids()).toEqual(before);
    }, 120_000);

    test("every command's create run again (as after lost state): nothing restarts, member IDs and data kept", () => {
        const before = pids();
        const ids = (JSON.parse(memberIds()) as { members: { ID: string }[] }).members.map((m) => String(m.ID)).sort();
        const r = cli(["up", "--rerun-commands"]);
        expect(r.status).toBe(0);
        const all = stateResources().filter((x) => x.custom && !x.type.startsWith("pulumi:providers:"));
        const commands = all.filter((x) => x.type === "command:remote:Command").length;
        // Six steps per member, the pre-upgrade snapshot, the gate and the teardown step.
        expect(commands).toBe(3 * 6 + 3);
        expect(r.stdout).toContain(`lab: 0 created, 0 updated, 0 replaced, 0 deleted, ${commands} re-run, ${all.length - commands} unchanged`);
        expect(r.stdout).toMatch(/etcd-etcd2-start \| etcd is running with this configuration: nothing to do/);
        expect(r.stdout).toMatch(/etcd-etcd3-binaries \| etcd 3\.5\.\d+ \(this release\) already installed/);
        expect(r.stdout).toMatch(/etcd-upgrade-snapshot \| this member already runs the wanted release: no upgrade, no snapshot/);
        expect(r.stdout).toMatch(/etcd-etcd1-maintenance \| changed: none/);
        expect(pids()).toEqual(before);
        expect((JSON.parse(memberIds()) as { members: { ID: string }[] }).members.map((m) => String(m.ID)).sort()).toEqual(ids);
        expect(ctl(st.endpoints, ["get", "/lab/hello", "--print-value-only"]).stdout.trim()).toBe("world");
        expectNoChanges(statusJson().pulumi);
    }, 180_000);
});

describe("faults, with a continuous writer", () => {
    const figures: string[] = [];
    afterAll(() => console.log(figures.join("\n")));

    test("kill -9 the leader: a new leader, writes resume, every acknowledged write on every member", async () => {
        const leader = await findLeader(st.endpoints, tls);
        const pid = statusJson().members.find((m) => m.clientUrl === leader.endpoint)!.pid!;
        const w = faultWriter(st.endpoints, "/faults/leader-kill/");
        w.start();
        await sleep(1500);
        const killedAt = nowMs();
        process.kill(pid, "SIGKILL");
        const next = await waitForNewLeader(st.endpoints.filter((e) => e !== leader.endpoint), tls, leader.memberId, 15_000);
        await sleep(2000);
        const report = await w.stop();
        // The host's systemd restarts it (Restart=on-failure, RestartSec=5s); then all three must agree.
        await waitHealthy(st.endpoints, 30_000);
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/leader-kill/");
        figures.push(formatFigures("leader-kill", report, { lost: v.lost.length, leader_election_ms: Math.round(next.elapsedMs), write_pause_ms: pause(report, killedAt) }));
        expect(next.memberId).not.toBe(leader.memberId);
        expect(next.elapsedMs).toBeLessThan(5000);
        expect(pause(report, killedAt)).toBeLessThan(6000);
        expect(report.acknowledged).toBeGreaterThan(20);
        expect(report.records.filter((r) => r.outcome === "ok" && r.startMs > killedAt).length).toBeGreaterThan(0);
        expect(v.lost).toEqual([]);
        expect(v.unexpected).toEqual([]);
        expect(report.revisionsMonotonic).toBe(true);
    }, 90_000);

    test("kill -9 a follower: no failed writes", async () => {
        const leader = await findLeader(st.endpoints, tls);
        const follower = statusJson().members.find((m) => m.clientUrl !== leader.endpoint)!;
        const w = faultWriter(st.endpoints.filter((e) => e !== follower.clientUrl), "/faults/follower-kill/");
        w.start();
        await sleep(1000);
        const killedAt = nowMs();
        process.kill(follower.pid!, "SIGKILL");
        await sleep(2500);
        const report = await w.stop();
        await waitHealthy(st.endpoints, 30_000);
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/follower-kill/");
        figures.push(formatFigures("follower-kill", report, { lost: v.lost.length, write_pause_ms: pause(report, killedAt) }));
        expect(report.failed + report.indeterminate).toBe(0);
        expect(v.lost).toEqual([]);
    }, 90_000);

    test("two of three down: writes refused within the timeout, serializable reads still served; restart heals, data intact", async () => {
        expect(ctl(st.endpoints, ["put", "/faults/quorum/before", "kept"]).status).toBe(0);
        const [a, b, c] = lab().hosts;
        inHost(a, ["systemctl", "stop", "etcd"]);
        inHost(b, ["systemctl", "stop", "etcd"]);
        const survivor = [`https://${c.address}:2379`];
        const t = Date.now();
        const put = ctl(survivor, ["put", "/faults/quorum/during", "x"]);
        const refusedMs = Date.now() - t;
        expect(put.status).not.toBe(0);
        expect(refusedMs).toBeLessThan(8000);
        expect(ctl(survivor, ["get", "/faults/quorum/before"]).status).not.toBe(0);
        expect(ctl(survivor, ["get", "/faults/quorum/before", "--consistency=s", "--print-value-only"]).stdout.trim()).toBe("kept");
        inHost(a, ["systemctl", "start", "etcd"]);
        inHost(b, ["systemctl", "start", "etcd"]);
        const healMs = await waitHealthy(st.endpoints, 30_000);
        figures.push(`scenario=quorum-loss put_refused_ms=${refusedMs} healed_ms=${healMs}`);
        for (const e of st.endpoints) expect(ctl([e], ["get", "/faults/quorum/before", "--consistency=s", "--print-value-only"]).stdout.trim()).toBe("kept");
    }, 90_000);

    test("SIGSTOP the leader past the election timeout, then SIGCONT: a new leader, no acknowledged write lost", async () => {
        const leader = await findLeader(st.endpoints, tls);
        const pid = statusJson().members.find((m) => m.clientUrl === leader.endpoint)!.pid!;
        const w = faultWriter(st.endpoints.filter((e) => e !== leader.endpoint), "/faults/pause/");
        w.start();
        await sleep(1000);
        const stoppedAt = nowMs();
        process.kill(pid, "SIGSTOP");
        let next;
        try {
            next = await waitForNewLeader(st.endpoints.filter((e) => e !== leader.endpoint), tls, leader.memberId, 15_000);
            await sleep(3000);
        } finally {
            process.kill(pid, "SIGCONT");
        }
        await sleep(1000);
        const report = await w.stop();
        await waitHealthy(st.endpoints, 30_000);
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/pause/");
        figures.push(formatFigures("leader-pause", report, { lost: v.lost.length, leader_election_ms: Math.round(next.elapsedMs), write_pause_ms: pause(report, stoppedAt) }));
        expect(next.memberId).not.toBe(leader.memberId);
        expect(v.lost).toEqual([]);
        // The paused process kept its PID: it was never restarted.
        expect(statusJson().members.find((m) => m.clientUrl === leader.endpoint)!.pid).toBe(pid);
    }, 90_000);

    test("partition the leader from its peers: the majority keeps writing, the isolated member refuses, heals afterwards", async () => {
        const leader = await findLeader(st.endpoints, tls);
        const isolatedHost = lab().hosts.find((h) => leader.endpoint === `https://${h.address}:2379`)!;
        const uid = Number(inHost(isolatedHost, ["id", "-u", "etcd"]).trim());
        const majority = st.endpoints.filter((e) => e !== leader.endpoint);
        const w = faultWriter(majority, "/faults/partition/");
        w.start();
        await sleep(1000);
        const isolatedAt = nowMs();
        isolate(PREFIX, { uid, address: isolatedHost.address, peerPort: 2380, index: isolatedHost.index });
        try {
            const next = await waitForNewLeader(majority, tls, leader.memberId, 15_000);
            await sleep(3000);
            // The isolated member: linearizable reads and writes refused.
            expect((await ctlAsync([leader.endpoint], ["put", "/faults/partition/isolated", "x"])).status).not.toBe(0);
            expect((await ctlAsync([leader.endpoint], ["get", "/faults/partition/isolated"])).status).not.toBe(0);
            const during = w.acknowledgedSoFar;
            await sleep(1500);
            expect(w.acknowledgedSoFar).toBeGreaterThan(during);
            figures.push(`scenario=partition-election leader_election_ms=${Math.round(next.elapsedMs)}`);
        } finally {
            heal(PREFIX);
        }
        const healMs = await waitHealthy(st.endpoints, 30_000);
        const report = await w.stop();
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/partition/");
        figures.push(formatFigures("partition", report, { lost: v.lost.length, healed_ms: healMs, write_pause_ms: pause(report, isolatedAt) }));
        expect(v.lost).toEqual([]);
        // The majority kept writing: the only pause is about one election (plus one op timeout).
        expect(pause(report, isolatedAt)).toBeLessThan(6000);
        expect(ctl(st.endpoints, ["get", "/faults/partition/isolated"]).stdout).not.toContain("x");
    }, 90_000);

    test("reboot the leader (`systemctl reboot` inside its host): etcd comes back by itself with its data, writes go on", async () => {
        expect(ctl(st.endpoints, ["put", "/faults/reboot/before", "kept"]).status).toBe(0);
        const leader = await findLeader(st.endpoints, tls);
        const h = lab().hosts.find((x) => leader.endpoint === `https://${x.address}:2379`)!;
        const pidBefore = statusJson().members.find((m) => m.name === h.name)!.pid!;
        const initBefore = initPid(h)!;
        const others = st.endpoints.filter((e) => e !== leader.endpoint);
        const w = faultWriter(others, "/faults/reboot/");
        w.start();
        await sleep(1000);
        const rebootAt = nowMs();
        const booted = await rebootHost(h.name);
        // Nobody starts etcd: the unit is enabled, so the host's systemd starts it at boot.
        const healMs = await waitHealthy(st.endpoints, 30_000);
        await sleep(1000);
        const report = await w.stop();
        const after = statusJson().members.find((m) => m.name === h.name)!;
        expect(booted.initPid).not.toBe(initBefore);
        expect(after.pid).not.toBeNull();
        expect(after.pid).not.toBe(pidBefore);
        expect(ppid(after.pid!)).toBe(booted.initPid);
        expect(inHost(h, ["systemctl", "show", "etcd", "-p", "NRestarts", "--value"]).trim()).toBe("0");
        // Same member, same data: the key from before the reboot, read from the rebooted member alone.
        expect(ctl([leader.endpoint], ["get", "/faults/reboot/before", "--consistency=s", "--print-value-only"]).stdout.trim()).toBe("kept");
        expect(ctl([leader.endpoint], ["endpoint", "status", "-w", "json"]).stdout).toContain(`"member_id":${BigInt(leader.memberId).toString()}`);
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/reboot/");
        figures.push(formatFigures("reboot-leader", report, { lost: v.lost.length, boot_ms: booted.ms, healthy_ms: healMs, write_pause_ms: pause(report, rebootAt) }));
        expect(v.lost).toEqual([]);
        expect(report.acknowledged).toBeGreaterThan(20);
    }, 120_000);

    test("power cut of every member at once, then all booted: the cluster is healthy and every acknowledged write is there", async () => {
        const w = faultWriter(st.endpoints, "/faults/power/");
        w.start();
        await sleep(1500);
        const hosts = lab().hosts;
        const initsBefore = hosts.map((h) => initPid(h));
        const cutAt = nowMs();
        await powerCut();
        for (const h of lab().hosts) {
            expect(alive(h.runPid)).toBe(false);
            expect(hostProcesses(h)).toEqual([]);
        }
        const ackedAtCut = w.acknowledgedSoFar;
        await sleep(1000);
        const bootMs = await powerOnHosts();
        const healMs = await waitHealthy(st.endpoints, 60_000);
        await sleep(1500);
        const report = await w.stop();
        for (const [i, h] of lab().hosts.entries()) expect(initPid(h)).not.toBe(initsBefore[i]);
        // When each host's etcd became active (Type=notify: it had joined its peers), counted from its systemd's start.
        const readyMs = lab().hosts.map((h) => {
            const us = (args: string[]) => Number(inHost(h, ["systemctl", "show", ...args, "--value"]).trim());
            return Math.round((us(["etcd", "-p", "ActiveEnterTimestampMonotonic"]) - us(["-p", "UserspaceTimestampMonotonic"])) / 1000);
        });
        const v = await verifyAcknowledged(report, st.endpoints, tls, "/faults/power/");
        figures.push(formatFigures("power-cut-all", report, { lost: v.lost.length, acked_before_cut: ackedAtCut, boot_ms: bootMs, etcd_active_after_boot_ms: readyMs.join("/"), healthy_after_boot_ms: healMs, write_pause_ms: pause(report, cutAt) }));
        expect(v.lost).toEqual([]);
        expect(v.unexpected).toEqual([]);
        expect(ackedAtCut).toBeGreaterThan(20);
        expect(report.records.filter((r) => r.outcome === "ok" && r.startMs > cutAt).length).toBeGreaterThan(0);
        // Everything from before the faults is still there too.
        expect(ctl(st.endpoints, ["get", "/lab/hello", "--print-value-only"]).stdout.trim()).toBe("world");
        st = statusJson();
        expect(st.members.every((m) => m.healthy && m.pid !== null)).toBe(true);
    }, 180_000);
});

describe("down", () => {
    test("pulumi destroy (run by hand as `status --json` says) ends in seconds and leaves each host without etcd but its data dir and snapshots", () => {
        const p = statusJson().pulumi;
        const t0 = Date.now();
        const r = labPulumiCli(p, ["destroy", "--yes", "--skip-preview", "--non-interactive", "--color", "never"], 300_000);
        const seconds = (Date.now() - t0) / 1000;
        expect([r.status, r.stderr]).toEqual([0, ""]);
        console.log(`pulumi destroy of the 3-member lab stack: ${seconds.toFixed(1)}s`);
        expect(seconds).toBeLessThanOrEqual(30);
        expect(r.stdout).toMatch(/^ {4}- \d+ deleted$/m);
        // The members were not removed one by one through each other: the teardown step marked the destroy.
        expect(r.stdout).not.toMatch(/removed etcd\d \([0-9a-f]+\)/);
        expect(stackExport(p).resources.filter((x) => x.type !== "pulumi:pulumi:Stack")).toEqual([]);
        for (const h of lab().hosts) {
            const probe = inHost(h, [
                "sh",
                "-c",
                "systemctl is-active etcd || true; ls -A /var/lib/etcd; ls /etc/etcd/pki 2>/dev/null | grep -c '[.]key$' || true; ls /etc/systemd/system/etcd.service /usr/local/bin/etcd 2>&1 | grep -c 'No such file' || true",
            ]);
            const [active, ...rest] = probe.trim().split("\n");
            expect([h.name, active]).toEqual([h.name, "inactive"]);
            // No member/ dir left in the data dir, no private key, neither the unit nor the binary.
            expect(rest).toEqual(["0", "2"]);
        }
    }, 120_000);

    test("stops every host (clean shutdown) and removes its cgroups, the iptables chain and the lab dir; nothing of the machine changes", () => {
        const hosts = lab().hosts;
        const r = cli(["down"], 120_000);
        expect(r.status).toBe(0);
        // Its own `pulumi destroy` finds nothing left (the previous test destroyed the stack).
        expect(r.stdout).toMatch(/^lab: pulumi destroy: 0 deleted in \d+\.\ds$/m);
        expect(r.stdout).toMatch(/lab: stopped \d+ processes of 3 hosts \(clean shutdown\)/);
        for (const h of hosts) {
            expect(alive(h.runPid)).toBe(false);
            expect(hostProcesses(h)).toEqual([]);
            for (const hier of ["systemd", "unified"]) expect(fs.existsSync(`/sys/fs/cgroup/${hier}/${h.cgroup}`)).toBe(false);
        }
        for (const hier of ["systemd", "unified"]) expect(fs.existsSync(`/sys/fs/cgroup/${hier}/${CGROUP_ROOT}/${PREFIX.replace(/\./g, "-")}`)).toBe(false);
        expect(fs.existsSync(path.join(LAB, "lab.json"))).toBe(false);
        expect(spawnSync("iptables", ["-L", chainOf(PREFIX), "-n"]).status).not.toBe(0);
        expect(spawnSync("ss", ["-ltnH"], { encoding: "utf8" }).stdout).not.toContain(`${PREFIX}.`);
        // The overlays lived in each power switch's own mount namespace; nspawn's state in a tmpfs there.
        expect(spawnSync("findmnt", ["-rn", "-o", "SOURCE"], { encoding: "utf8" }).stdout).not.toMatch(/etcd-ha-lab-/);
        expect(machineFingerprint()).toEqual(machineBefore);
    }, 150_000);
});
