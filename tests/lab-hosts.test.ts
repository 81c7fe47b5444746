/**
 * The lab hosts' pure parts and scripts: what makes each nspawn machine its own host (renderHostFiles), the
 * names that keep several labs apart (hostIds), and the two shell scripts (root file system recipe, power
 * switch) linted. The hosts themselves boot in the lab tests (lab-ssh, lab, lab-day2*).
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { partitionMark, partitionRules } from "../tools/lab/faults/partition";
import { CGROUP_ROOT, ensureRootfs, hostIds, renderHostFiles } from "../tools/lab/hosts";
import { itLintsClean } from "./helpers/tools";

const BASE_LOGIN_DEFS = ["MAIL_DIR /var/mail", "#SYS_UID_MIN 100", "#SYS_UID_MAX 999", "SYS_GID_MIN 100", "UMASK 022", ""].join("\n");
const host = (over: Partial<Parameters<typeof renderHostFiles>[0]> = {}) =>
    renderHostFiles({
        name: "etcd2",
        address: "127.66.0.12",
        index: 1,
        machineId: "0123456789abcdef0123456789abcdef",
        authorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample lab\n\n",
        baseLoginDefs: BASE_LOGIN_DEFS,
        adminUid: 1000,
        adminGid: 1000,
        ...over,
    });
const file = (files: ReturnType<typeof renderHostFiles>, p: string) => files.find((f) => f.path === p)!;

describe("renderHostFiles: each host its own machine", () => {
    it("hostname and /etc/hosts name the host on its own address", () => {
        const f = host();
        expect(file(f, "/etc/hostname").content).toBe("etcd2\n");
        const hosts = file(f, "/etc/hosts").content.split("\n");
        expect(hosts).toContain("127.66.0.12 etcd2");
        expect(hosts).toContain("127.0.0.1 localhost");
        expect(hosts.filter((l) => /\betcd2\b/.test(l))).toHaveLength(1);
    });

    it("sshd listens only on the host's address (one ListenAddress line)", () => {
        const lines = file(host(), "/etc/ssh/sshd_config.d/60-etcd-ha-lab-listen.conf").content.split("\n").filter((l) => l && !l.startsWith("#"));
        expect(lines).toEqual(["ListenAddress 127.66.0.12:22"]);
    });

    it("the admin user's key: 0600, owned by the admin user, one line", () => {
        const k = file(host(), "/home/ubuntu/.ssh/authorized_keys");
        expect(k).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000, content: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample lab\n" });
    });

    it("a machine-id written on the first boot only", () => {
        expect(file(host(), "/etc/machine-id")).toMatchObject({ content: "0123456789abcdef0123456789abcdef\n", once: true, mode: 0o444 });
    });

    it("login.defs: the base file with a system uid/gid range of the host's own (distinct etcd uids across hosts)", () => {
        const ranges = [0, 1, 8].map((index) => {
            const text = file(host({ index }), "/etc/login.defs").content;
            expect(text).toContain("MAIL_DIR /var/mail");
            expect(text).toContain("UMASK 022");
            expect(text).not.toMatch(/^#?SYS_UID_MIN 100$/m);
            const v = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(text)![1]);
            expect(text.match(/^SYS_UID_MIN /gm)).toHaveLength(1);
            expect(v("SYS_GID_MIN")).toBe(v("SYS_UID_MIN"));
            expect(v("SYS_GID_MAX")).toBe(v("SYS_UID_MAX"));
            return [v("SYS_UID_MIN"), v("SYS_UID_MAX")];
        });
        expect(ranges).toEqual([
            [900, 909],
            [910, 919],
            [980, 989],
        ]);
    });

    it.each([
        [{ address: "10.0.0.12" }, /loopback/],
        [{ address: "127.66.0.12; rm" }, /loopback/],
        [{ name: "Etcd 2" }, /bad host name/],
        [{ machineId: "xyz" }, /bad machine-id/],
    ])("refuses %j", (over, message) => {
        expect(() => host(over)).toThrow(message);
    });
});

describe("hostIds: machine and cgroup names unique per lab range", () => {
    it("derive from the range and the host name", () => {
        expect(hostIds("127.66.2", "etcd1")).toEqual({ machine: "etcd-ha-127-66-2-etcd1", cgroup: `${CGROUP_ROOT}/127-66-2/etcd1` });
        expect(hostIds("127.66.3", "etcd1").machine).not.toBe(hostIds("127.66.2", "etcd1").machine);
        // A machine name is a host name: at most 64 characters.
        expect(hostIds("127.255.255", "etcd9").machine.length).toBeLessThanOrEqual(64);
    });
});

describe("partitionRules: cut one member off, and nothing of a lab beside it", () => {
    // Host 1 of every lab has the same system uid range (renderHostFiles): the uid alone names a member of
    // each lab running side by side.
    const member = (prefix: string) => ({ uid: 910, address: `${prefix}.11`, peerPort: 2380, mark: partitionMark(prefix, 0) });
    const arg = (rule: string[], flag: string) => (rule.includes(flag) ? rule[rule.indexOf(flag) + 1] : undefined);

    it("every rule names the member's lab: its range, its address or a mark of its own", () => {
        const rules = partitionRules("127.66.2", member("127.66.2"));
        for (const r of rules) {
            const scoped = arg(r, "-d") === "127.66.2.0/24" || arg(r, "-d") === "127.66.2.11" || arg(r, "-s") === "127.66.2.11" || arg(r, "--mark") === "0x420201";
            expect(scoped).toBe(true);
        }
        // The uid rule marks only connections to this lab's peers.
        const byUid = rules.filter((r) => r.includes("--uid-owner"));
        expect(byUid).toHaveLength(1);
        expect(arg(byUid[0], "-d")).toBe("127.66.2.0/24");
        expect(arg(byUid[0], "--set-mark")).toBe("0x420201");
    });

    it("two labs' rules for the same host index share no destination range and no mark", () => {
        const a = partitionRules("127.66.2", member("127.66.2"));
        const b = partitionRules("127.66.6", member("127.66.6"));
        const dests = (rules: string[][]) => new Set(rules.map((r) => arg(r, "-d")).filter(Boolean));
        const marks = (rules: string[][]) => new Set(rules.map((r) => arg(r, "--mark") ?? arg(r, "--set-mark")).filter(Boolean));
        expect([...dests(a)].filter((d) => dests(b).has(d))).toEqual([]);
        expect([...marks(a)].filter((m) => marks(b).has(m))).toEqual([]);
        expect(partitionMark("127.66.2", 0)).not.toBe(partitionMark("127.66.2", 1));
    });

    it("refuses a member outside the lab's range, and a range that is not 127.x.y", () => {
        expect(() => partitionRules("127.66.2", member("127.66.6"))).toThrow(/not in the lab's range 127\.66\.2\.0\/24/);
        expect(() => partitionRules("10.0.0", member("10.0.0"))).toThrow(/a lab range is 127\.x\.y/);
    });
});

for (const script of ["rootfs.sh", "host-run.sh"]) {
    describe(`tools/lab/${script}`, () => {
        itLintsClean(() => fs.readFileSync(path.join(__dirname, "..", "tools", "lab", script), "utf8"));
    });
}

describe("the hosts' root file system (tools/lab/rootfs.sh)", () => {
    let rootfs: string;
    beforeAll(() => {
        rootfs = ensureRootfs();
    }, 1_200_000);

    it("is cached under a name from the recipe's own sha256 (an edited recipe builds a new tree)", () => {
        const recipe = fs.readFileSync(path.join(__dirname, "..", "tools", "lab", "rootfs.sh"));
        expect(path.basename(rootfs)).toBe(`rootfs-${createHash("sha256").update(recipe).digest("hex").slice(0, 16)}`);
        expect(fs.readFileSync(path.join(rootfs, ".etcd-ha-lab-rootfs"), "utf8")).toMatch(/^recipe [0-9a-f]{16}\nsuite \w+\nbuilt /);
        // Outside the repository.
        expect(path.relative(path.resolve(__dirname, ".."), rootfs).startsWith("..")).toBe(true);
    });

    it("holds no per-host identity: empty machine-id, no hostname, no SSH host keys (a first-boot unit makes them)", () => {
        expect(fs.readFileSync(path.join(rootfs, "etc", "machine-id"), "utf8")).toBe("");
        expect(fs.existsSync(path.join(rootfs, "etc", "hostname"))).toBe(false);
        expect(fs.readdirSync(path.join(rootfs, "etc", "ssh")).filter((f) => f.startsWith("ssh_host_"))).toEqual([]);
        expect(fs.readFileSync(path.join(rootfs, "etc", "systemd", "system", "etcd-ha-lab-hostkeys.service"), "utf8")).toMatch(/^ExecStart=\/usr\/bin\/ssh-keygen -A$/m);
    });

    it("has real systemd as init, sshd key-only, the ubuntu user with passwordless sudo as cloud-init writes it, and no etcd", () => {
        expect(fs.realpathSync(path.join(rootfs, "sbin", "init"))).toMatch(/\/lib\/systemd\/systemd$/);
        expect(fs.readFileSync(path.join(rootfs, "etc", "ssh", "sshd_config.d", "50-etcd-ha-lab.conf"), "utf8")).toMatch(/^PasswordAuthentication no$/m);
        expect(fs.readFileSync(path.join(rootfs, "etc", "passwd"), "utf8")).toMatch(/^ubuntu:x:1000:1000:[^:]*:\/home\/ubuntu:\/bin\/bash$/m);
        const sudoers = path.join(rootfs, "etc", "sudoers.d", "90-cloud-init-users");
        expect(fs.readFileSync(sudoers, "utf8")).toMatch(/^ubuntu ALL=\(ALL\) NOPASSWD:ALL$/m);
        expect(fs.statSync(sudoers).mode & 0o777).toBe(0o440);
        for (const b of ["usr/bin/etcd", "usr/bin/etcdctl", "usr/local/bin/etcd", "lib/systemd/system/etcd.service"]) expect(fs.existsSync(path.join(rootfs, b))).toBe(false);
    });
});
