/**
 * Really runs the readiness script the way its remote command does (`/bin/sh -c` on the wrapped command
 * text, as root), in a private mount namespace where a scratch file is bind-mounted over /etc/hosts and a
 * stub `cloud-init` (exit status and delay from files) is first in PATH. Nothing on this machine changes:
 * the last test compares the real /etc/hosts before and after.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { wrapScript } from "../components/etcd/scripts";
import { readinessScript } from "../components/proxmox/readiness";
import { renderHostsBlock } from "../components/proxmox/cloudInit";
import { needTool, shellcheck } from "./helpers/tools";

const MEMBERS = [
    { name: "etcd1", fqdn: "etcd1.kloud.lan", address: "10.103.0.101" },
    { name: "etcd2", fqdn: "etcd2.kloud.lan", address: "10.103.0.102" },
    { name: "etcd3", fqdn: "etcd3.kloud.lan", address: "10.103.0.103" },
];
const UBUNTU_HOSTS = "127.0.0.1 localhost\n127.0.1.1 ubuntu\n\n# The following lines are desirable for IPv6 capable hosts\n::1 ip6-localhost ip6-loopback\n";

let dir: string;
let hostsBefore: string;

beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error("readiness-run needs root (a private mount namespace and a bind mount over /etc/hosts): run the tests as root");
    for (const cmd of ["unshare", "mount", "timeout", "shellcheck"]) needTool(cmd);
    hostsBefore = fs.readFileSync("/etc/hosts", "utf8");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "readiness-"));
    fs.mkdirSync(path.join(dir, "bin"));
    // The stub answers `status --wait` with the status in cloud-init.rc after the delay in cloud-init.delay,
    // and `status --long` with a fixed report.
    fs.writeFileSync(
        path.join(dir, "bin", "cloud-init"),
        // Its sleep ends with it when `timeout` stops it, so no process outlives a test. The trap is set before
        // the sleep starts, and the shell's own job messages ("Terminated", seen once under load) go nowhere:
        // the script under test must be judged on what it prints, not on the stub's noise.
        `#!/bin/sh\nif [ "$2" = "--long" ]; then echo "status: error"; echo "detail: stub report"; exit 0; fi\n` +
            `exec 2>/dev/null\npid=""\ntrap 'if [ -n "$pid" ]; then kill "$pid"; fi; exit 143' TERM\nsleep "$(cat ${dir}/cloud-init.delay)" & pid=$!\nwait "$pid"\nexit "$(cat ${dir}/cloud-init.rc)"\n`,
        { mode: 0o755 },
    );
    fs.writeFileSync(path.join(dir, "hosts"), UBUNTU_HOSTS);
});

afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the wrapped script once in the sandbox; `cloudInit: false` leaves the stub out of PATH. */
function run(opts: { members?: typeof MEMBERS; rc?: number; delay?: number; timeoutSeconds?: number; cloudInit?: boolean; hostsTemplate?: string }) {
    fs.writeFileSync(path.join(dir, "cloud-init.rc"), String(opts.rc ?? 0));
    fs.writeFileSync(path.join(dir, "cloud-init.delay"), String(opts.delay ?? 0));
    const script = readinessScript({ vmName: "etcd2", clusterName: "etcd", timeoutSeconds: opts.timeoutSeconds ?? 30, members: opts.members ?? MEMBERS, hostsTemplate: opts.hostsTemplate });
    const cmd = wrapScript(script, "root");
    fs.writeFileSync(path.join(dir, "cmd"), cmd);
    const pathVar = `${opts.cloudInit === false ? "" : `${dir}/bin:`}/usr/sbin:/usr/bin:/sbin:/bin`;
    const inner = `mount --bind ${dir}/hosts /etc/hosts && PATH=${pathVar} exec /bin/sh -c "$(cat ${dir}/cmd)"`;
    const r = spawnSync("timeout", ["20", "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", inner], { encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, hosts: fs.readFileSync(path.join(dir, "hosts"), "utf8") };
}

describe("readiness script, run for real", () => {
    it("passes shellcheck", () => {
        const script = readinessScript({ vmName: "etcd2", clusterName: "etcd", timeoutSeconds: 900, members: MEMBERS });
        const r = shellcheck(`#!/bin/bash\nset -euo pipefail\n${script}\n`);
        expect(r.stdout).toBe("");
        expect(r.status).toBe(0);
    });

    it("waits for cloud-init, then adds the member block and keeps every existing line", () => {
        const r = run({ delay: 1 });
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("etcd2: cloud-init done\netcd2: /etc/hosts member block updated\n");
        expect(r.hosts).toBe(`${UBUNTU_HOSTS}${renderHostsBlock("etcd", MEMBERS)}\n`);
    });

    it("a second run changes nothing (same inode, same mtime)", () => {
        const before = fs.statSync(path.join(dir, "hosts"));
        const text = fs.readFileSync(path.join(dir, "hosts"), "utf8");
        const r = run({});
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("etcd2: cloud-init done\netcd2: /etc/hosts member block current\n");
        const after = fs.statSync(path.join(dir, "hosts"));
        expect([after.ino, after.mtimeMs, r.hosts]).toEqual([before.ino, before.mtimeMs, text]);
    });

    it("a changed member list replaces the block in place: one block, other lines kept", () => {
        const five = [...MEMBERS, { name: "etcd4", fqdn: "etcd4.kloud.lan", address: "10.103.0.104" }, { name: "etcd5", fqdn: "etcd5.kloud.lan", address: "10.103.0.105" }];
        const r = run({ members: five });
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("etcd2: /etc/hosts member block updated");
        expect(r.hosts).toBe(`${UBUNTU_HOSTS}${renderHostsBlock("etcd", five)}\n`);
        expect(r.hosts.match(/# BEGIN etcd-ha etcd members/g)).toHaveLength(1);
        // Back to three: the removed members' lines go.
        expect(run({}).hosts).toBe(`${UBUNTU_HOSTS}${renderHostsBlock("etcd", MEMBERS)}\n`);
    });

    it("recoverable cloud-init errors (status 2) are reported and do not fail", () => {
        const r = run({ rc: 2 });
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("etcd2: cloud-init done with recoverable errors:\nstatus: error");
    });

    it("a failed cloud-init fails naming the VM, with its report, and leaves /etc/hosts alone", () => {
        const text = fs.readFileSync(path.join(dir, "hosts"), "utf8");
        const r = run({ rc: 1, members: MEMBERS.slice(0, 1) });
        expect(r.status).toBe(1);
        expect(r.stderr).toBe("etcd2: cloud-init failed (exit 1); see /var/log/cloud-init-output.log on the VM\nstatus: error\ndetail: stub report\n");
        expect(r.hosts).toBe(text);
    });

    it("a cloud-init that never finishes fails after the bound, naming the VM and the config key", () => {
        const t0 = Date.now();
        const r = run({ delay: 10, timeoutSeconds: 1 });
        const took = (Date.now() - t0) / 1000;
        expect(r.status).toBe(1);
        expect(r.stderr.split("\n")[0]).toBe("etcd2: cloud-init did not finish within 1 s (proxmox.readyTimeoutSeconds); see /var/log/cloud-init-output.log on the VM");
        expect(took).toBeLessThan(5);
    });

    it("a host without cloud-init has nothing to wait for and still gets the block", () => {
        const r = run({ cloudInit: false });
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("etcd2: no cloud-init on this host: nothing to wait for\netcd2: /etc/hosts member block current\n");
    });

    it("also keeps cloud-init's hosts template in step when it exists (it re-renders /etc/hosts at boot without a snippet)", () => {
        const tmpl = path.join(dir, "hosts.debian.tmpl");
        const jinja = "## template:jinja\n{# comment #}\n127.0.1.1 {{fqdn}} {{hostname}}\n127.0.0.1 localhost\n";
        fs.writeFileSync(tmpl, jinja);
        const r = run({ hostsTemplate: tmpl });
        expect(r.status).toBe(0);
        expect(r.stdout).toBe(`etcd2: cloud-init done\netcd2: /etc/hosts member block current\netcd2: ${tmpl} member block updated\n`);
        expect(fs.readFileSync(tmpl, "utf8")).toBe(`${jinja}${renderHostsBlock("etcd", MEMBERS)}\n`);
        expect(run({ hostsTemplate: tmpl }).stdout).toContain(`etcd2: ${tmpl} member block current`);
    });

    it("left this machine's /etc/hosts as it was", () => {
        expect(fs.readFileSync("/etc/hosts", "utf8")).toBe(hostsBefore);
    });
});
