/**
 * The lab's systemctl/journalctl stand-in (tools/lab/standin/systemctl.py), run for real as root with its
 * unit and state directories moved to a temp dir: Type=notify readiness from a real sd_notify datagram (and
 * its start timeout), a real etcd 3.4.23 member, User=, Environment=/EnvironmentFile=, Restart=on-failure
 * after `kill -9` without zombies, stop, daemon-reload's warning, enable/disable, a oneshot behind a timer
 * fired with `standin-fire`, journalctl, and the SSH-session guard: `start` must not keep the caller's
 * stdout open. Every process started here is stopped in afterAll.
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { httpGet } from "./helpers/http";

const STANDIN = path.join(__dirname, "..", "tools", "lab", "standin", "systemctl.py");
const ADDR = "127.77.2.1";
const PORTS = { client: 42379, peer: 42380 };
const NOBODY = 65534;

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
    ms: number;
}

let dir = "";
let env: NodeJS.ProcessEnv = {};
const units = (name: string) => path.join(dir, "units", name);

function run(tool: "systemctl" | "journalctl", args: string[], timeoutMs = 20_000): Run {
    const t0 = Date.now();
    const r = spawnSync("python3", ["-IS", path.join(dir, "bin", tool), ...args], { env, encoding: "utf8", timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", ms: Date.now() - t0 };
}
const sc = (...args: string[]) => run("systemctl", args);
const jc = (...args: string[]) => run("journalctl", args);
/** Every property `systemctl show` knows for the unit, in one call. */
function show(unit: string): Record<string, string> {
    const lines = sc("show", unit).stdout.split("\n").filter((l) => l.includes("="));
    return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}
const mainPid = (unit: string) => Number(sc("show", "-p", "MainPID", "--value", unit).stdout.trim());

function writeUnit(name: string, text: string) {
    fs.writeFileSync(units(name), text.replace(/^\n/, ""));
}

/** True when `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
    try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
        return false;
    }
}

/** The process' command line ("" once it is gone). */
function cmdline(pid: number): string {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
        return "";
    }
}

function parentOf(pid: number): number {
    try {
        return Number(/^\d+ \(.*\) \S+ (\d+)/.exec(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1] ?? 0);
    } catch {
        return 0;
    }
}

function environ(pid: number): Map<string, string> {
    const entries = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter((e) => e !== "");
    return new Map(entries.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 100 ms for at most `ms`; returns its last value. */
async function until<T>(fn: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
    let v = fn();
    for (let i = 0; i < Math.ceil(ms / 100) && !ok(v); i++) {
        await sleep(100);
        v = fn();
    }
    return v;
}

/** The body of a plain-HTTP GET. */
const get = async (url: string): Promise<string> => (await httpGet(url, 2000)).body;

/** A Type=notify test program: after argv[1] seconds it sends STATUS= and READY=1 (unless argv[1] is "never"), then sleeps. */
const NOTIFY_PY = `
import os, socket, sys, time
if sys.argv[1] != "never":
    time.sleep(float(sys.argv[1]))
    print("sending READY=1 as uid", os.getuid(), flush=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"STATUS=serving\\nREADY=1\\nWHATEVER=ignored", os.environ["NOTIFY_SOCKET"])
time.sleep(600)
`;

describe("lab systemctl stand-in", () => {
    beforeAll(() => {
        for (const cmd of ["python3", "etcd", "ps", "ss"]) {
            if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed`);
        }
        if (process.getuid?.() !== 0) throw new Error("these tests run services as other users and need root");
        if ((spawnSync("ss", ["-ltnH"], { encoding: "utf8" }).stdout ?? "").includes(`${ADDR}:`)) throw new Error(`${ADDR} already has listeners`);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "lab-systemctl-"));
        fs.chmodSync(dir, 0o755); // services run as nobody must reach the notify socket and their files
        for (const d of ["units", "state", "bin"]) fs.mkdirSync(path.join(dir, d));
        for (const tool of ["systemctl", "journalctl"]) fs.symlinkSync(STANDIN, path.join(dir, "bin", tool));
        fs.writeFileSync(path.join(dir, "notify.py"), NOTIFY_PY);
        env = { PATH: process.env.PATH, SYSTEMCTL_STANDIN_UNIT_DIR: path.join(dir, "units"), SYSTEMCTL_STANDIN_STATE: path.join(dir, "state") };
    });

    afterAll(async () => {
        if (!dir) return;
        const state = path.join(dir, "state", "units");
        const names = fs.existsSync(state) ? fs.readdirSync(state) : [];
        for (const u of names) sc("stop", u);
        const pidIn = (u: string, f: string) => (fs.existsSync(path.join(state, u, f)) ? Number(fs.readFileSync(path.join(state, u, f), "utf8")) : 0);
        const ours = new Set<number>();
        for (const u of names) {
            const supervisor = pidIn(u, "supervisor.pid");
            if (supervisor > 1 && alive(supervisor) && cmdline(supervisor).includes(dir)) ours.add(supervisor);
            const main = pidIn(u, "main.pid");
            if (main > 1 && alive(main) && ours.has(parentOf(main))) ours.add(main);
        }
        for (const p of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number)) {
            if (alive(p) && cmdline(p).includes(dir)) ours.add(p); // anything else of ours that survived (python3 notify.py, etcd)
        }
        for (const p of ours) {
            try {
                process.kill(p, "SIGKILL");
            } catch {
                // already gone
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("Type=notify: start blocks until READY=1 arrives on NOTIFY_SOCKET, then the unit is active", () => {
        fs.writeFileSync(path.join(dir, "notify.env"), '# comment\nFROM_FILE="a b"\nSINGLE=\'x y\'\n\nOVERRIDE=file\n');
        writeUnit("notify.service", `
[Unit]
Description=notify test
[Service]
Type=notify
User=nobody
ExecStart=/usr/bin/python3 ${dir}/notify.py \\
  1.0
Environment="SPACED=one two" PLAIN=1
Environment=OVERRIDE=env
EnvironmentFile=${dir}/notify.env
EnvironmentFile=-${dir}/missing.env
Restart=on-failure
RestartSec=1
`);
        const r = sc("start", "notify");
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.ms).toBeGreaterThanOrEqual(950);
        expect(r.ms).toBeLessThan(6000);
        expect(sc("is-active", "notify")).toMatchObject({ status: 0, stdout: "active\n" });
        expect(sc("is-active", "--quiet", "notify.service")).toMatchObject({ status: 0, stdout: "" });
        const pid = mainPid("notify");
        expect(alive(pid)).toBe(true);
        expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain(`${dir}/notify.py`);
        const st = sc("status", "notify");
        expect(st.status).toBe(0);
        expect(st.stdout).toContain(`Main PID: ${pid} (python3)`);
        expect(st.stdout).toContain('Status: "serving"');
        expect(show("notify")).toMatchObject({ ActiveState: "active", SubState: "running", MainPID: String(pid), NRestarts: "0", Type: "notify" });
    });

    it("User= runs the service as that user, with its groups", () => {
        const status = fs.readFileSync(`/proc/${mainPid("notify")}/status`, "utf8");
        const gid = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"))?.split(":")[3];
        expect(status).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, "m"));
        expect(status).toMatch(new RegExp(`^Gid:\\s+${gid}\\s+${gid}\\s+${gid}\\s+${gid}$`, "m"));
        expect(status).toMatch(new RegExp(`^Groups:\\s+${gid}\\s*$`, "m")); // initgroups: nobody's groups, none of root's
        expect(jc("-u", "notify", "-o", "cat").stdout).toContain(`sending READY=1 as uid ${NOBODY}`);
    });

    it("gives the service systemd's clean environment plus Environment= and EnvironmentFile=", () => {
        const e = environ(mainPid("notify"));
        expect(e.get("PATH")).toBe("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        expect(e.get("LANG")).toBe("C.UTF-8");
        expect(e.get("USER")).toBe("nobody");
        expect(e.get("LOGNAME")).toBe("nobody");
        const passwd = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"))?.split(":") ?? [];
        expect(e.get("HOME")).toBe(passwd[5]);
        expect(e.get("SHELL")).toBe(passwd[6]);
        expect(e.get("INVOCATION_ID")).toMatch(/^[0-9a-f]{32}$/);
        expect(e.get("NOTIFY_SOCKET")).toBe(path.join(dir, "state", "units", "notify.service", "notify"));
        expect(e.get("SPACED")).toBe("one two");
        expect(e.get("PLAIN")).toBe("1");
        expect(e.get("FROM_FILE")).toBe("a b");
        expect(e.get("SINGLE")).toBe("x y");
        expect(e.get("OVERRIDE")).toBe("file"); // EnvironmentFile= wins over Environment=
        expect(e.has("SYSTEMCTL_STANDIN_STATE")).toBe(false); // nothing leaks from the caller
        expect(e.has("JEST_WORKER_ID")).toBe(false);
    });

    it("Restart=on-failure: kill -9 of the main process brings a new one after RestartSec, counted, with no zombie", async () => {
        const old = mainPid("notify");
        const supervisor = Number(fs.readFileSync(path.join(dir, "state", "units", "notify.service", "supervisor.pid"), "utf8"));
        process.kill(old, "SIGKILL");
        const t0 = Date.now();
        const after = await until(() => show("notify"), (p) => p.ActiveState === "active" && p.MainPID !== "0" && p.MainPID !== String(old), 10_000);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(1900); // RestartSec=1, then 1 s until READY=1
        expect(after).toMatchObject({ ActiveState: "active", NRestarts: "1", ExecMainStatus: "0" });
        const pid = Number(after.MainPID);
        expect(pid).not.toBe(old);
        expect(alive(pid)).toBe(true);
        expect(spawnSync("ps", ["-o", "stat=", "-p", String(old)], { encoding: "utf8" }).stdout.trim()).toBe(""); // reaped, not a zombie
        const kids = spawnSync("ps", ["-o", "stat=", "--ppid", String(supervisor)], { encoding: "utf8" }).stdout;
        expect(kids).not.toMatch(/Z/);
        expect(jc("-u", "notify", "-o", "cat").stdout).toMatch(/Main process exited, code=killed, status=9\/KILL[\s\S]*restart counter is at 1/);
    });

    it("stop: SIGTERM ends the service, it is not restarted, and stopping again is a no-op", async () => {
        const pid = mainPid("notify");
        const r = sc("stop", "notify");
        expect(r).toMatchObject({ status: 0, stderr: "" });
        expect(r.ms).toBeLessThan(5000);
        expect(alive(pid)).toBe(false);
        await sleep(1200); // longer than RestartSec
        expect(sc("is-active", "notify")).toMatchObject({ status: 3, stdout: "inactive\n" });
        expect(show("notify")).toMatchObject({ MainPID: "0", ExecMainCode: "2", ExecMainStatus: "15", Result: "success", NRestarts: "1" });
        expect(sc("stop", "notify")).toMatchObject({ status: 0, stdout: "", stderr: "" });
        expect(sc("status", "notify").status).toBe(3);
    });

    it("Type=notify without READY=1: start fails after TimeoutStartSec with systemd's job message and the process is killed", () => {
        writeUnit("never.service", `
[Service]
Type=notify
ExecStart=/usr/bin/python3 ${dir}/notify.py never
TimeoutStartSec=2
TimeoutStopSec=3
`);
        const r = sc("start", "never");
        expect(r.status).toBe(1);
        expect(r.ms).toBeGreaterThanOrEqual(1900);
        expect(r.ms).toBeLessThan(7000);
        expect(r.stderr).toBe(
            'Job for never.service failed because a timeout was exceeded.\nSee "systemctl status never.service" and "journalctl -xeu never.service" for details.\n',
        );
        const p = show("never");
        expect(Number(p.ExecMainPID)).toBeGreaterThan(0);
        expect(alive(Number(p.ExecMainPID))).toBe(false);
        expect(p).toMatchObject({ ActiveState: "failed", Result: "timeout", MainPID: "0", ExecMainStatus: "15" });
        expect(sc("is-active", "never")).toMatchObject({ status: 3, stdout: "failed\n" });
        expect(jc("-u", "never", "-o", "cat").stdout).toContain("start operation timed out. Terminating.");
    });

    it("Type=notify whose process exits before READY=1: start fails with the control-process message", () => {
        writeUnit("dies.service", `
[Service]
Type=notify
ExecStart=/bin/sh -c 'echo dying; exit 3'
`);
        const r = sc("start", "dies");
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("Job for dies.service failed because the control process exited with error code.");
        expect(show("dies")).toMatchObject({ ActiveState: "failed", Result: "exit-code", ExecMainCode: "1", ExecMainStatus: "3" });
    });

    it("runs a real etcd 3.4.23 member under Type=notify: start returns once etcd reports READY=1", async () => {
        const data = path.join(dir, "etcd-data");
        fs.mkdirSync(data, { mode: 0o700 });
        fs.chownSync(data, NOBODY, NOBODY);
        const peer = `http://${ADDR}:${PORTS.peer}`;
        const client = `http://${ADDR}:${PORTS.client}`;
        const flags = [
            "--name=lab1",
            `--data-dir=${data}`,
            `--listen-client-urls=${client}`,
            `--advertise-client-urls=${client}`,
            `--listen-peer-urls=${peer}`,
            `--initial-advertise-peer-urls=${peer}`,
            `--initial-cluster=lab1=${peer}`,
            "--initial-cluster-token=lab-systemctl",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-outputs=stderr",
        ];
        // The [Service] directives of renderUnit, with nobody for etcd and plain HTTP.
        writeUnit("etcd.service", `
[Unit]
Description=etcd member lab1 of cluster lab
Documentation=https://etcd.io/docs/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
User=nobody
Group=nogroup
ExecStart=/usr/bin/etcd \\
${flags.map((f) => `  ${f}`).join(" \\\n")}
Restart=on-failure
RestartSec=5s
TimeoutStartSec=300
LimitNOFILE=4096
IOSchedulingClass=best-effort
IOSchedulingPriority=0
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${data}
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`);
        const r = sc("start", "etcd");
        expect(r).toMatchObject({ status: 0, stderr: "" });
        expect(sc("is-active", "--quiet", "etcd").status).toBe(0);
        expect(JSON.parse(await get(`${client}/health`))).toMatchObject({ health: "true" });
        const pid = mainPid("etcd");
        expect(fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()).toBe("etcd");
        expect(fs.readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s`, "m"));
        expect(fs.readFileSync(`/proc/${pid}/limits`, "utf8")).toMatch(/^Max open files\s+4096\s+4096\s/m);
        expect(fs.readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^NoNewPrivs:\s+1$/m);
        const log = jc("-u", "etcd", "-o", "cat").stdout;
        expect(log).toContain('"msg":"serving client traffic insecurely');
        expect(log).toContain("Started etcd.service - etcd member lab1 of cluster lab.");
        expect(jc("-u", "etcd").stdout).toMatch(new RegExp(`^\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+ etcd\\[${pid}\\]: \\{"level"`, "m"));
        expect(sc("stop", "etcd").status).toBe(0);
        expect(alive(pid)).toBe(false);
        expect(sc("is-active", "etcd").stdout).toBe("inactive\n");
    });

    it("start returns while the service keeps running, with the caller's stdout closed (no SSH session hang)", async () => {
        writeUnit("chatty.service", `
[Service]
ExecStart=/bin/sh -c 'while :; do echo tick; sleep 0.2; done'
`);
        const child = spawn("python3", ["-IS", path.join(dir, "bin", "systemctl"), "start", "chatty"], { env, stdio: ["pipe", "pipe", "pipe"] });
        const t0 = Date.now();
        const closed = await Promise.race([
            new Promise<number>((resolve) => child.once("close", () => resolve(Date.now() - t0))),
            sleep(5000).then(() => -1),
        ]);
        if (closed < 0) child.kill("SIGKILL");
        expect(closed).toBeGreaterThanOrEqual(0);
        expect(closed).toBeLessThan(3000);
        expect(child.exitCode).toBe(0);
        expect(sc("is-active", "chatty").stdout).toBe("active\n");
        const ticks = await until(() => jc("-u", "chatty", "-o", "cat").stdout.split("\n").filter((l) => l === "tick").length, (n) => n >= 2, 3000);
        expect(ticks).toBeGreaterThanOrEqual(2);
        expect(sc("stop", "chatty").status).toBe(0);
    });

    it("Restart=on-failure restarts a non-zero exit but not an exit 0", async () => {
        for (const [name, code] of [["exit0", 0], ["exit3", 3]] as const) {
            writeUnit(`${name}.service`, `
[Service]
ExecStart=/bin/sh -c 'sleep 0.3; exit ${code}'
Restart=on-failure
RestartSec=0.2
`);
            expect(sc("start", name).status).toBe(0);
        }
        const exit3 = await until(() => show("exit3"), (p) => Number(p.NRestarts) >= 2, 5000);
        expect(Number(exit3.NRestarts)).toBeGreaterThanOrEqual(2);
        expect(show("exit0")).toMatchObject({ ActiveState: "inactive", Result: "success", NRestarts: "0", ExecMainStatus: "0" });
        expect(sc("stop", "exit3").status).toBe(0);
    });

    it("daemon-reload: a unit changed on disk draws systemd's warning and keeps its loaded definition until reloaded", async () => {
        const text = (v: string) => `[Service]\nExecStart=/bin/sleep 60\nEnvironment=V=${v}\n`;
        writeUnit("reload.service", text("1"));
        expect(sc("daemon-reload").status).toBe(0);
        expect(sc("start", "reload")).toMatchObject({ status: 0, stderr: "" });
        expect(environ(mainPid("reload")).get("V")).toBe("1");
        writeUnit("reload.service", text("2"));
        const warned = sc("restart", "reload");
        expect(warned.status).toBe(0);
        expect(warned.stderr).toBe(
            "Warning: The unit file, source configuration file or drop-ins of reload.service changed on disk. Run 'systemctl daemon-reload' to reload units.\n",
        );
        expect(environ(mainPid("reload")).get("V")).toBe("1");
        expect(sc("daemon-reload").status).toBe(0);
        expect(sc("restart", "reload")).toMatchObject({ status: 0, stderr: "" });
        expect(environ(mainPid("reload")).get("V")).toBe("2");
        const pid = mainPid("reload");
        expect(sc("kill", "-s", "SIGKILL", "reload").status).toBe(0);
        const killed = await until(() => show("reload"), (p) => p.ActiveState === "failed", 3000);
        expect(killed).toMatchObject({ ActiveState: "failed", Result: "signal", ExecMainStatus: "9", NRestarts: "0" }); // Restart=no
        expect(alive(pid)).toBe(false);
    });

    it("enable --now, is-enabled and disable --now manage the .wants symlink and the service", () => {
        writeUnit("svc.service", "[Service]\nExecStart=/bin/sleep 60\n[Install]\nWantedBy=multi-user.target\n");
        const link = path.join(dir, "units", "multi-user.target.wants", "svc.service");
        expect(sc("is-enabled", "svc")).toMatchObject({ status: 1, stdout: "disabled\n" });
        const en = sc("enable", "--now", "svc");
        expect(en.status).toBe(0);
        expect(en.stderr).toBe(`Created symlink ${link} → ${units("svc.service")}.\n`);
        expect(fs.readlinkSync(link)).toBe(units("svc.service"));
        expect(sc("is-active", "svc").stdout).toBe("active\n");
        expect(sc("is-enabled", "svc")).toMatchObject({ status: 0, stdout: "enabled\n" });
        expect(sc("enable", "svc")).toMatchObject({ status: 0, stderr: "" });
        const dis = sc("disable", "--now", "svc");
        expect(dis).toMatchObject({ status: 0, stderr: `Removed "${link}".\n` });
        expect(fs.existsSync(link)).toBe(false);
        expect(sc("is-active", "svc")).toMatchObject({ status: 3, stdout: "inactive\n" });
        expect(sc("is-enabled", "svc")).toMatchObject({ status: 1, stdout: "disabled\n" });
    });

    it("a oneshot behind a timer: the timer is enabled, listed, and standin-fire runs the service to completion", () => {
        const out = path.join(dir, "snapshots");
        fs.writeFileSync(path.join(dir, "snap.env"), "CODE=0\n");
        writeUnit("snap.service", `
[Unit]
Description=scheduled snapshot
[Service]
Type=oneshot
EnvironmentFile=${dir}/snap.env
ExecStart=/bin/sh -c 'echo "snapshot $INVOCATION_ID" >> ${out}; exit $CODE'
`);
        writeUnit("snap.timer", "[Timer]\nOnCalendar=*-*-* 03:00:00\nPersistent=true\n[Install]\nWantedBy=timers.target\n");
        expect(sc("standin-fire", "snap.timer")).toMatchObject({ status: 1, stderr: expect.stringContaining("is not active") });
        expect(sc("enable", "--now", "snap.timer").status).toBe(0);
        expect(sc("is-active", "snap.timer").stdout).toBe("active\n");
        expect(sc("is-enabled", "snap.timer").stdout).toBe("enabled\n");
        expect(sc("list-timers").stdout).toMatch(/^n\/a\s+n\/a\s+n\/a\s+n\/a\s+snap\.timer\s+snap\.service$/m);
        expect(fs.existsSync(out)).toBe(false); // timers never fire by themselves
        const fired = sc("standin-fire", "snap.timer");
        expect(fired).toMatchObject({ status: 0, stderr: "" });
        expect(fs.readFileSync(out, "utf8")).toMatch(/^snapshot [0-9a-f]{32}\n$/);
        expect(sc("is-active", "snap").stdout).toBe("inactive\n"); // a oneshot is done when start returns
        expect(show("snap")).toMatchObject({ Result: "success", ExecMainStatus: "0" });
        expect(sc("list-timers").stdout).toMatch(/^n\/a\s+n\/a\s+\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+\s+\d+s ago\s+snap\.timer\s+snap\.service$/m);
        fs.writeFileSync(path.join(dir, "snap.env"), "CODE=4\n");
        const failed = sc("standin-fire", "snap.timer");
        expect(failed.status).toBe(4);
        expect(failed.stderr).toContain("Job for snap.service failed because the control process exited with error code.");
        expect(sc("is-active", "snap").stdout).toBe("failed\n");
        expect(sc("stop", "snap.timer").status).toBe(0);
        expect(sc("is-active", "snap.timer").stdout).toBe("inactive\n");
        expect(sc("list-timers").stdout).toContain("0 timers listed.");
    });

    it("journalctl -u prints the unit's log in journald's short format, -n N of it, -o cat without the prefix", () => {
        writeUnit("lines.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; done'\n");
        expect(sc("start", "lines").status).toBe(0);
        const all = jc("-u", "lines", "--no-pager").stdout.trimEnd().split("\n");
        expect(all.length).toBe(15); // Starting, 12 lines, exit status, Deactivated
        for (const line of all) expect(line).toMatch(/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (sh|systemctl-standin)\[\d+\]: /);
        expect(jc("-u", "lines", "-n", "3", "-o", "cat").stdout).toBe(
            "line12\nlines.service: Main process exited, code=exited, status=0/SUCCESS\nlines.service: Deactivated successfully.\n",
        );
        expect(jc("-u", "lines.service", "-n", "50", "--no-pager").stdout.trimEnd().split("\n")).toEqual(all);
        expect(jc("-u", "lines", "-n").stdout.trimEnd().split("\n")).toEqual(all.slice(-10));
        expect(jc("-xeu", "lines").stdout.trimEnd().split("\n")).toEqual(all);
        expect(jc("-u", "nothing-here").stdout).toBe("-- No entries --\n");
        expect(jc("-u", "lines", "--since", "today").status).toBe(1);
        expect(jc("-u", "lines", "-o", "json").status).toBe(1);
    });

    it("fails unknown verbs, options, properties and units with systemctl's messages and exit codes", () => {
        expect(sc("frobnicate", "x")).toMatchObject({ status: 1, stderr: "Unknown command verb 'frobnicate'.\n" });
        expect(sc("start", "--no-such-option", "x").status).toBe(1);
        expect(sc()).toMatchObject({ status: 1 });
        expect(sc("start", "nope")).toMatchObject({ status: 5, stderr: "Failed to start nope.service: Unit nope.service not found.\n" });
        expect(sc("stop", "nope")).toMatchObject({ status: 5, stderr: "Failed to stop nope.service: Unit nope.service not loaded.\n" });
        expect(sc("status", "nope")).toMatchObject({ status: 4, stderr: "Unit nope.service could not be found.\n" });
        expect(sc("is-active", "nope")).toMatchObject({ status: 3, stdout: "inactive\n" });
        expect(sc("enable", "nope").status).toBe(1);
        expect(sc("show", "-p", "NoSuchProperty", "notify").status).toBe(1);
        writeUnit("pre.service", "[Service]\nExecStartPre=/bin/true\nExecStart=/bin/sleep 1\n");
        expect(sc("start", "pre")).toMatchObject({ status: 1, stderr: expect.stringContaining("does not support ExecStartPre=") });
    });
});
