/**
 * The member scripts as text: each variant passes `bash -n` and shellcheck with no finding, survives the
 * trip through the SSH user's login shell byte for byte (dash and bash), and carries no secret.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MEMBER_SH, TEARDOWN_MARKER_TTL_SECONDS, turnBounds, UNINSTALL_SH } from "../components/etcd/rolling";
import {
    binariesRemoveScript,
    binariesScript,
    certsRemoveScript,
    certsScript,
    configRemoveScript,
    configScript,
    healthGateScript,
    leaveScript,
    parseCertBundle,
    prepareRemoveScript,
    prepareScript,
    renderCertBundle,
    renderEtcdctlEnv,
    renderEtcdctlWrapper,
    startScript,
    unwrapScript,
    wrapScript,
    stagedTarballPath,
    sq,
} from "../components/etcd/scripts";
import { maintenanceRemoveScript, maintenanceScript, restoreStepScript, restoreStopScript, upgradeSnapshotScript } from "../components/etcd/day2";
import { teardownScripts } from "../components/etcd/teardown";
import { fakePem } from "./helpers/tokens";
import { itLintsClean, runTool } from "./helpers/tools";

const SHA = "a".repeat(64);
const SCRIPTS: [string, string][] = [
    ["prepare", prepareScript({ dataDir: "/var/lib/etcd" })],
    ["binaries download 3.5", binariesScript({ version: "3.5.21", arch: "amd64", sha256: SHA, source: { kind: "download", url: "https://github.com/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz" } })],
    ["binaries push 3.4 arm64", binariesScript({ version: "3.4.23", arch: "arm64", sha256: SHA, source: { kind: "push", path: stagedTarballPath("3.4.23", "arm64") } })],
    ["certs", certsScript([{ name: "ca.crt", mode: "0644" }, { name: "server.crt", mode: "0644" }, { name: "server.key", mode: "0600" }])],
    ["config", configScript([{ path: "/etc/systemd/system/etcd.service", mode: "0600", owner: "root:root", content: "[Unit]\nDescription=x\n" }, { path: "/etc/etcd/etcdctl.env", mode: "0644", owner: "root:root", content: renderEtcdctlEnv({ endpoints: ["https://10.0.0.1:2379"] }) }])],
    ...[false, true].map((replace): [string, string] => [
        `start${replace ? " (replace)" : ""}`,
        startScript({
            unitSha256: SHA,
            version: "3.5.21",
            name: "etcd2",
            peerUrl: "https://10.0.0.2:2380",
            clientUrl: "https://10.0.0.2:2379",
            dataDir: "/var/lib/etcd",
            initialCluster: "etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380",
            token: "etcd-abc",
            clusterName: "etcd",
            turn: turnBounds(2),
            others: ["https://10.0.0.1:2379"],
            replace,
        }),
    ]),
    [
        "start (release, certificates, restore)",
        startScript({
            unitSha256: SHA,
            version: "3.5.21",
            name: "etcd1",
            peerUrl: "https://10.0.0.1:2380",
            clientUrl: "https://10.0.0.1:2379",
            dataDir: "/var/lib/etcd",
            initialCluster: "etcd1=https://10.0.0.1:2380",
            token: "etcd-abc",
            clusterName: "etcd",
            turn: turnBounds(2),
            others: [],
            release: { version: "3.5.21", sha256: SHA },
            certsSha256: SHA,
            restoreId: "abc123",
        }),
    ],
    ["maintenance (timer)", maintenanceScript({ snapshot: { clusterName: "etcd", memberName: "etcd1", version: "3.5.21", endpoint: "https://10.0.0.1:2379", retain: 3, dir: "/var/backups/etcd" }, schedule: { onCalendar: "daily", randomizedDelaySec: 60 }, endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"] })],
    ["maintenance (no timer)", maintenanceScript({ snapshot: { clusterName: "etcd", memberName: "etcd1", version: "3.4.23", endpoint: "https://10.0.0.1:2379", retain: 3, offHostCommand: 'cp "$1" /mnt/backup/' }, endpoints: ["https://10.0.0.1:2379"] })],
    ["maintenance removal", maintenanceRemoveScript()],
    ["pre-upgrade snapshot", upgradeSnapshotScript({ release: { version: "3.5.21", sha256: SHA }, dataDir: "/var/lib/etcd", snapshot: { clusterName: "etcd", memberName: "etcd1", version: "3.5.21", endpoint: "https://10.0.0.1:2379", retain: 3 } })],
    ["restore stop", restoreStopScript({ restoreId: "abc123", sshUser: "ubuntu" })],
    [
        "restore (from an S3 store)",
        restoreStepScript({
            release: { version: "3.5.21", sha256: SHA },
            memberName: "etcd1",
            peerUrl: "https://10.0.0.1:2380",
            initialCluster: "etcd1=https://10.0.0.1:2380",
            token: "etcd-restore-abc123",
            dataDir: "/var/lib/etcd",
            restoreId: "abc123",
            sha256: SHA,
            url: "s3://etcd-backups/etcd/etcd/etcd_etcd1_20261208T010203Z.db",
            s3: { endpoint: "https://s3.kloud.lan:9000", region: "us-east-1", caPem: "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n" },
        }),
    ],
    [
        "maintenance (S3 store)",
        maintenanceScript({
            snapshot: {
                clusterName: "etcd",
                memberName: "etcd1",
                version: "3.6.4",
                endpoint: "https://10.0.0.1:2379",
                retain: 3,
                s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups", prefix: "etcd/", region: "us-east-1", authFile: "/etc/etcd/s3.curlrc", caFile: "/etc/etcd/s3-ca.crt", retainCount: 120, retainDays: 30, attempts: 4, backoffSeconds: 5, requestTimeoutSeconds: 900, budgetSeconds: 3600 },
            },
            s3CaPem: "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
            endpoints: ["https://10.0.0.1:2379"],
        }),
    ],
    ...[undefined, "https://backups.example/etcd/snap.db"].map((url): [string, string] => [
        `restore (${url ? "download" : "pushed"})`,
        restoreStepScript({ release: { version: "3.5.21", sha256: SHA }, memberName: "etcd1", peerUrl: "https://10.0.0.1:2380", initialCluster: "etcd1=https://10.0.0.1:2380", token: "etcd-restore-abc123", dataDir: "/var/lib/etcd", restoreId: "abc123", sha256: SHA, url }),
    ]),
    ["leave", leaveScript({ name: "etcd2", peerUrl: "https://10.0.0.2:2380", clientUrl: "https://10.0.0.2:2379", dataDir: "/var/lib/etcd", clusterName: "etcd", turn: turnBounds(2) })],
    ...(["create", "delete"] as const).map((which): [string, string] => [`teardown ${which}`, teardownScripts({ clusterName: "etcd", endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"] })[which]]),
    ["certs delete", certsRemoveScript([{ name: "ca.crt" }, { name: "server.crt" }, { name: "server.key" }])],
    ["config delete", configRemoveScript(["/etc/systemd/system/etcd.service", "/etc/etcd/etcdctl.env", "/usr/local/bin/etcdctl.sh", "/etc/etcd/bootstrap.env"])],
    ["binaries delete", binariesRemoveScript()],
    ["prepare delete", prepareRemoveScript({ dataDir: "/var/lib/etcd", snapshotDir: "/var/backups/etcd" })],
    ["health gate", healthGateScript({ members: [{ name: "etcd1", clientUrl: "https://10.0.0.1:2379", peerUrl: "https://10.0.0.1:2380" }, { name: "etcd2", clientUrl: "https://10.0.0.2:2379", peerUrl: "https://10.0.0.2:2380" }], attempts: 60, intervalSeconds: 2, timeoutSeconds: 300 })],
];


describe.each(SCRIPTS)("%s script", (_label, body) => {
    const script = unwrapScript(wrapScript(body, "ubuntu"));

    it("starts with set -euo pipefail", () => {
        expect(script.split("\n")[0]).toBe("set -euo pipefail");
    });

    itLintsClean(() => script);

    it("never traces, prints a key, or removes a data dir", () => {
        expect(script).not.toMatch(/set -x|set -o xtrace/);
        expect(script).not.toMatch(/PRIVATE KEY/);
        expect(script).not.toMatch(/rm -rf?\s+["']?\/var\/lib\/etcd/);
    });
});

describe("wrapScript", () => {
    it.each(["dash", "bash"])("reaches bash byte for byte through a %s login shell", (shell) => {
        for (const [, body] of SCRIPTS) {
            // Replace the interpreter with printf to see exactly what bash would receive.
            const cmd = wrapScript(body, "root").replace(/^\/bin\/bash -c /, "printf '%s' ");
            const r = runTool(shell, ["-c", cmd]);
            expect(r.status).toBe(0);
            expect(r.stdout).toBe(`set -euo pipefail\n${body.trimEnd()}`);
        }
    });
    it("uses sudo -n only for a non-root user", () => {
        expect(wrapScript("true", "root")).toMatch(/^\/bin\/bash -c /);
        expect(wrapScript("true", "ubuntu")).toMatch(/^sudo -n \/bin\/bash -c /);
    });
    it("runs the script with the command's stdin still available", () => {
        const cmd = wrapScript("cat", "root");
        expect(runTool("dash", ["-c", cmd], "from stdin\n").stdout).toBe("from stdin\n");
    });
    it("refuses a script containing its delimiter", () => {
        expect(() => wrapScript("echo\nETCD_HA_SCRIPT\n", "root")).toThrow(/delimiter/);
    });
    it("quotes values for the shell", () => {
        expect(runTool("bash", ["-c", `printf '%s' ${sq("it's $HOME")}`]).stdout).toBe("it's $HOME");
    });
});

describe("certificate bundle", () => {
    const files = [
        { name: "ca.crt", content: fakePem("CERTIFICATE", "AAA") },
        { name: "server.key", content: fakePem("EC PRIVATE KEY", "BBB").trimEnd() },
    ];
    it("round-trips every file, adding a final newline where missing", () => {
        const parsed = parseCertBundle(renderCertBundle(files));
        expect([...parsed.keys()]).toEqual(["ca.crt", "server.key"]);
        expect(parsed.get("ca.crt")).toBe(files[0].content);
        expect(parsed.get("server.key")).toBe(`${files[1].content}\n`);
    });
    it("splits exactly as the certs script's awk does", () => {
        const bundle = renderCertBundle(files);
        const awk = /awk -v dir="\$incoming" '\n([\s\S]*?)\n'\n/.exec(certsScript([{ name: "ca.crt", mode: "0644" }]))![1];
        const r = runTool("bash", ["-c", `d=$(mktemp -d); awk -v dir="$d" "$1"; for f in ca.crt server.key; do printf '==%s==\\n' "$f"; cat "$d/$f"; done; rm -rf "$d"`, "x", awk], bundle);
        expect(r.stdout).toBe(`==ca.crt==\n${files[0].content}==server.key==\n${files[1].content}\n`);
    });
    it("refuses content with a header-like line, even indented", () => {
        expect(() => renderCertBundle([{ name: "a.crt", content: "x\n  #etcd-ha-file b.key\n" }])).toThrow(/header/);
    });
    it("refuses unsafe names", () => {
        expect(() => renderCertBundle([{ name: "../x", content: "y" }])).toThrow(/bad bundle file name/);
    });
});

describe("etcdctl wrapper", () => {
    it("passes shellcheck as POSIX sh", () => {
        const r = runTool("shellcheck", ["--shell=sh", "--severity=style", "--format=gcc", "--exclude=SC1091", "-"], renderEtcdctlWrapper());
        expect(r.stdout).toBe("");
    });
    it("sources the env file and execs etcdctl", () => {
        const w = renderEtcdctlWrapper();
        expect(w).toMatch(/^#!\/bin\/sh\n/);
        expect(w).toContain(". /etc/etcd/etcdctl.env");
        expect(w).toContain('exec /usr/local/bin/etcdctl "$@"');
    });
    it("env file names the admin client and every endpoint", () => {
        const env = new Map(
            renderEtcdctlEnv({ endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"] })
                .split("\n")
                .filter((l) => l && !l.startsWith("#"))
                .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
        );
        expect(Object.fromEntries(env)).toEqual({
            ETCDCTL_API: "3",
            ETCDCTL_ENDPOINTS: "https://10.0.0.1:2379,https://10.0.0.2:2379",
            ETCDCTL_CACERT: "/etc/etcd/pki/ca.crt",
            ETCDCTL_CERT: "/etc/etcd/pki/admin.crt",
            ETCDCTL_KEY: "/etc/etcd/pki/admin.key",
            ETCDCTL_DIAL_TIMEOUT: "3s",
        });
    });
});

describe("binaries script", () => {
    const dl = SCRIPTS[1][1];
    it("verifies the pinned sha256 before unpacking and refuses on mismatch", () => {
        expect(dl.indexOf("sha256sum --check")).toBeGreaterThan(0);
        expect(dl.indexOf("sha256sum --check")).toBeLessThan(dl.indexOf("tar -xzf"));
        expect(dl).toMatch(/refusing to install[\s\S]*exit 1/);
        expect(dl).toContain(`'${SHA}'`);
    });
    it("installs etcdutl from 3.5 only", () => {
        expect(dl).toContain("\nbins='etcd etcdctl etcdutl'\n");
        expect(SCRIPTS[2][1]).toContain("\nbins='etcd etcdctl'\n");
        expect(SCRIPTS[2][1]).toContain("export ETCD_UNSUPPORTED_ARCH=arm64");
    });
    it("skips when this release is installed (marker and versions) or already staged", () => {
        expect(dl).toContain(`release_id='3.5.21 ${SHA}'`);
        expect(dl).toContain("\nbin_dir='/usr/local/bin'\n");
        expect(dl).toMatch(/= "\$release_id" \] && etcd_ha_reports "\$bin_dir"; then\n\s+echo "etcd \$want \(this release\) already installed[^\n]*\n\s+exit 0/);
        expect(dl).toMatch(/= "\$release_id" \] && etcd_ha_reports "\$staged"; then\n\s+echo "etcd \$want already staged[^\n]*\n\s+exit 0/);
    });
    it("stages into a root-only dir and installs nothing into /usr/local/bin", () => {
        expect(dl).toContain("staged='/var/lib/etcd-ha/releases/etcd-v3.5.21-aaaaaaaaaaaaaaaa'");
        expect(dl).not.toMatch(/install [^\n]*\/usr\/local\/bin/);
        expect(dl).toMatch(/install -d -m 0700 -o root -g root "\$staged.new"/);
    });
    it("runs the upgrade guard first when given", () => {
        const guarded = binariesScript({ version: "3.5.21", arch: "amd64", sha256: SHA, source: { kind: "push", path: "/x.tgz" }, guard: "etcd_ha_upgrade_guard() { :; }\netcd_ha_upgrade_guard" });
        // binaries.sh only defines functions: the guard is called before the step's entry function, the last line.
        expect(guarded.indexOf("etcd_ha_upgrade_guard\n")).toBeGreaterThan(0);
        expect(guarded.trimEnd().split("\n").slice(-2)).toEqual(["etcd_ha_upgrade_guard", "etcd_ha_binaries"]);
    });
});

describe("start script: the learner's ID from `member add`", () => {
    // etcdctl prints `Member %16x added to cluster %16x`: an ID below 2^60 comes padded with spaces.
    const start = SCRIPTS.find(([n]) => n === "start")![1];
    const line = start.split("\n").find((l) => l.includes("learner_id=$(sed"))!;
    const sedExpr = /sed -n '([^']+)'/.exec(line)![1];
    const idOf = (added: string) => runTool("sed", ["-n", sedExpr], added).stdout.trim();
    it.each([
        ["a 16-digit ID", "Member ced000fda4d05edf added to cluster 8c4281cc65c7b112", "ced000fda4d05edf"],
        ["a 15-digit ID (padded)", "Member  cf79bbd88da4c94 added to cluster c8e0cdc6285dff59", "cf79bbd88da4c94"],
        ["a 13-digit ID and cluster ID (padded)", "Member    1f79bbd88da4c added to cluster     c8e0cdc6285df", "1f79bbd88da4c"],
    ])("%s", (_, added, id) => {
        expect(idOf(`${added}\n\nETCD_NAME="etcd5"\n`)).toBe(id);
    });
    it("an unreadable answer stops the join with the output", () => {
        expect(idOf("Error: etcdserver: too many learner members in cluster\n")).toBe("");
        expect(start).toMatch(/if \[ -z "\$learner_id" \]; then\n\s+echo "could not read the new member's ID from member add:" >&2/);
    });
});

describe("wipe_data (member.sh): the named removal of a member's data", () => {
    /** Runs wipe_data from member.sh on `dataDir` as the start and leave steps do; returns its output. */
    function wipe(dataDir: string): { status: number | null; stdout: string; stderr: string } {
        const r = spawnSync("bash", ["-c", 'set -euo pipefail; bin_dir=/nonexistent pki_dir=/nonexistent; source "$1"; data_dir=$2; wipe_data', "_", MEMBER_SH, dataDir], { encoding: "utf8", timeout: 10_000 });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    it("removes etcd's member/ dir and the restore staging dirs; keeps, and lists, everything else", () => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), "wipe-"));
        const outside = fs.mkdtempSync(path.join(os.tmpdir(), "wipe-outside-"));
        try {
            for (const f of ["member/wal/0.wal", "member/snap/db", ".restore-Ab12Cd/data/member/snap/db", "pre-restore-20261204T101500Z/member/snap/db", "tools/probe", "NOTES.txt"]) {
                fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
                fs.writeFileSync(path.join(d, f), "x");
            }
            fs.writeFileSync(path.join(outside, "precious"), "y");
            fs.symlinkSync(outside, path.join(d, "elsewhere"));
            const r = wipe(d);
            expect([r.status, r.stderr]).toEqual([0, ""]);
            expect(r.stdout).toBe(`kept in ${d} (not etcd's member data): NOTES.txt elsewhere pre-restore-20261204T101500Z tools\n`);
            expect(fs.readdirSync(d).sort()).toEqual(["NOTES.txt", "elsewhere", "pre-restore-20261204T101500Z", "tools"]);
            expect(fs.readFileSync(path.join(outside, "precious"), "utf8")).toBe("y");
            // Again: nothing left to remove, the same files kept.
            expect(wipe(d).stdout).toBe(r.stdout);
        } finally {
            fs.rmSync(d, { recursive: true, force: true });
            fs.rmSync(outside, { recursive: true, force: true });
        }
    });

    it("a member/ that is a symlink loses the link, never its target; an empty or missing data dir is nothing to do", () => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), "wipe-"));
        const target = fs.mkdtempSync(path.join(os.tmpdir(), "wipe-target-"));
        try {
            fs.writeFileSync(path.join(target, "db"), "z");
            fs.symlinkSync(target, path.join(d, "member"));
            expect(wipe(d)).toEqual({ status: 0, stdout: "", stderr: "" });
            expect(fs.readdirSync(d)).toEqual([]);
            expect(fs.readFileSync(path.join(target, "db"), "utf8")).toBe("z");
            expect(wipe(path.join(d, "missing"))).toEqual({ status: 0, stdout: "", stderr: "" });
        } finally {
            fs.rmSync(d, { recursive: true, force: true });
            fs.rmSync(target, { recursive: true, force: true });
        }
    });
});

describe("kept_on_host (member.sh): the leave's last line", () => {
    it("names the data dir, the snapshots and the etcd user as kept, and what this member's later deletes remove", () => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), "kept-"));
        try {
            const p = (x: string) => path.join(d, x);
            fs.mkdirSync(p("bin"));
            fs.mkdirSync(p("pki"));
            fs.mkdirSync(p("state"));
            for (const f of ["bin/etcd", "bin/etcdctl", "bin/etcdctl.sh", "etcd.service", "etcdctl.env"]) fs.writeFileSync(p(f), "x");
            const kept = () =>
                spawnSync(
                    "bash",
                    ["-c", 'set -euo pipefail; bin_dir=$2/bin pki_dir=$2/pki; source "$1"; unit_path=$2/etcd.service etcdctl_env=$2/etcdctl.env stamp=$2/state/etcd.started data_dir=/var/lib/etcd; kept_on_host', "_", MEMBER_SH, d],
                    { encoding: "utf8", timeout: 10_000 },
                );
            const r = kept();
            expect([r.status, r.stderr]).toEqual([0, ""]);
            expect(r.stdout).toBe(
                `kept on this host: the data dir /var/lib/etcd, the snapshots and the etcd user; this member's certs, config, binaries and prepare deletes remove the rest: ${[
                    "etcd.service",
                    "bin/etcd",
                    "bin/etcdctl",
                    "bin/etcdctl.sh",
                    "pki",
                    "etcdctl.env",
                    "state",
                ]
                    .map(p)
                    .join(" ")}\n`,
            );
            for (const f of ["bin", "pki", "state", "etcd.service", "etcdctl.env"]) fs.rmSync(p(f), { recursive: true });
            expect(kept().stdout).toBe("kept on this host: the data dir /var/lib/etcd, the snapshots and the etcd user; this member's certs, config, binaries and prepare deletes remove the rest: nothing left\n");
        } finally {
            fs.rmSync(d, { recursive: true, force: true });
        }
    });
});

describe("teardown scripts (teardown.ts)", () => {
    /** The parameter block of a rendered script, as name → value (each single-quoted, one line). */
    function params(script: string): Map<string, string> {
        return new Map([...script.matchAll(/^([a-z_]+)='([^'\n]*)'$/gm)].map((m) => [m[1], m[2]]));
    }
    const t = teardownScripts({ clusterName: "prod", endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] });

    it("both steps carry the cluster's marker key, every member's endpoint and the admin client's paths; each calls its own entry", () => {
        for (const script of [t.create, t.delete]) {
            expect(Object.fromEntries(params(script))).toEqual({
                cluster: "prod",
                marker: "/etcd-ha/prod/teardown",
                endpoints: "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379",
                marker_ttl: String(TEARDOWN_MARKER_TTL_SECONDS),
                ack_wait: "30",
                clear_wait: "300",
                bin_dir: "/usr/local/bin",
                pki_dir: "/etc/etcd/pki",
            });
            expect(script).toContain('--cert="$pki_dir/admin.crt" --key="$pki_dir/admin.key"');
        }
        expect(t.create.trimEnd().split("\n").pop()).toBe("etcd_ha_teardown_clear");
        expect(t.delete.trimEnd().split("\n").pop()).toBe("etcd_ha_teardown_mark");
    });

    it("the leave reads the same key the teardown writes", () => {
        const leave = leaveScript({ name: "etcd2", peerUrl: "https://10.0.0.2:2380", clientUrl: "https://10.0.0.2:2379", dataDir: "/var/lib/etcd", clusterName: "prod", turn: turnBounds(3) });
        expect(params(leave).get("teardown_marker")).toBe(params(t.delete).get("marker"));
    });

    it("takes its bounds, and refuses bad bounds and endpoints", () => {
        const b = params(teardownScripts({ clusterName: "c", endpoints: ["https://10.0.0.1:2379"], markerTtlSeconds: 60, ackWaitSeconds: 5, clearWaitSeconds: 9 }).delete);
        expect([b.get("marker_ttl"), b.get("ack_wait"), b.get("clear_wait")]).toEqual(["60", "5", "9"]);
        expect(() => teardownScripts({ clusterName: "c", endpoints: ["https://10.0.0.1:2379"], ackWaitSeconds: 0 })).toThrow(/ackWaitSeconds must be a positive integer/);
        expect(() => teardownScripts({ clusterName: "c", endpoints: ["https://10.0.0.1:2379,https://x:1"] })).toThrow(/bad endpoint/);
    });
});

describe("the install steps' deletes (sh/uninstall.sh)", () => {
    /** The parameter block of a rendered script, as name → value (each single-quoted, one line). */
    function params(script: string): Record<string, string> {
        return Object.fromEntries([...script.matchAll(/^([a-z_]+)='([^'\n]*)'$/gm)].map((m) => [m[1], m[2]]));
    }
    const OWNED = "/etc/etcd /etc/etcd/pki /var/lib/etcd-ha /var/lib/etcd-ha/releases /var/tmp/etcd-ha";
    const entry = (script: string) => script.trimEnd().split("\n").pop();

    it("each carries this program's paths and its step's own (the others' empty), and calls its own entry", () => {
        const paths = {
            owned_dirs: OWNED,
            pki_dir: "/etc/etcd/pki",
            config_dir: "/etc/etcd",
            bin_dir: "/usr/local/bin",
            release_marker: "/var/lib/etcd-ha/release",
            releases_dir: "/var/lib/etcd-ha/releases",
            state_dir: "/var/lib/etcd-ha",
            staging_dir: "/var/tmp/etcd-ha",
        };
        const none = { cert_files: "", config_files: "", unit_path: "", data_dir: "", snapshot_dir: "" };
        const certs = certsRemoveScript([{ name: "ca.crt" }, { name: "peer.crt" }, { name: "peer.key" }]);
        expect(params(certs)).toEqual({ ...paths, ...none, cert_files: "ca.crt peer.crt peer.key" });
        expect(entry(certs)).toBe("etcd_ha_uninstall_certs");
        const config = configRemoveScript(["/etc/systemd/system/etcd.service", "/etc/etcd/etcdctl.env"]);
        expect(params(config)).toEqual({ ...paths, ...none, config_files: "/etc/systemd/system/etcd.service /etc/etcd/etcdctl.env", unit_path: "/etc/systemd/system/etcd.service" });
        expect(entry(config)).toBe("etcd_ha_uninstall_config");
        // Without the unit among its files, the config delete neither disables nor reloads anything.
        expect(params(configRemoveScript(["/etc/etcd/etcdctl.env"])).unit_path).toBe("");
        const binaries = binariesRemoveScript();
        expect(params(binaries)).toEqual({ ...paths, ...none });
        expect(entry(binaries)).toBe("etcd_ha_uninstall_binaries");
        const prepare = prepareRemoveScript({ dataDir: "/data/etcd", snapshotDir: "/var/backups/etcd" });
        expect(params(prepare)).toEqual({ ...paths, ...none, data_dir: "/data/etcd", snapshot_dir: "/var/backups/etcd" });
        expect(entry(prepare)).toBe("etcd_ha_uninstall_prepare");
        expect(params(prepareRemoveScript({ dataDir: "/var/lib/etcd" })).snapshot_dir).toBe("");
    });

    it("refuses unsafe names and paths, and a data or snapshot dir the prepare delete would remove", () => {
        expect(() => certsRemoveScript([{ name: "../server.key" }])).toThrow(/bad file/);
        expect(() => certsRemoveScript([{ name: "*.key" }])).toThrow(/bad file/);
        for (const p of ["etcdctl.env", "/etc/etcd/../passwd", "/etc/etcd/*", "/etc//etcd/x", "/etc/etcd/a b"]) expect(() => configRemoveScript([p])).toThrow(/bad managed file/);
        expect(() => prepareRemoveScript({ dataDir: "/var/lib/etcd-ha/data" })).toThrow(/overlaps \/var\/lib\/etcd-ha/);
        expect(() => prepareRemoveScript({ dataDir: "/var/lib/etcd", snapshotDir: "/var/tmp" })).toThrow(/overlaps \/var\/tmp\/etcd-ha/);
    });

    it("nothing is removed by a glob outside this program's dirs: every rm names one path", () => {
        const sh = fs.readFileSync(UNINSTALL_SH, "utf8");
        const rms = sh.split("\n").filter((l) => /\brm(dir)? /.test(l) && !l.trimStart().startsWith("#"));
        expect(rms.map((l) => l.trim()).sort()).toEqual(['if err=$(rmdir -- "$1" 2>&1); then', 'rm -f -- "$1"', 'rm -rf -- "$1"']);
        // The one search (for a cut-short certs run's private dir) stays in the PKI dir, one level deep.
        expect(sh).toContain(`find "$pki_dir" -mindepth 1 -maxdepth 1 -type d -name '.incoming.*' -print0`);
    });

    /** Runs one delete from uninstall.sh with its paths swapped for scratch ones (as any user). */
    function run(entryFn: string, vars: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
        const assign = Object.entries(vars).map(([k, v]) => `${k}=${sq(v)}`).join("\n");
        const r = spawnSync("bash", ["-c", `set -euo pipefail\n${assign}\nsource ${sq(UNINSTALL_SH)}\n${entryFn}`], { encoding: "utf8", timeout: 10_000 });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    it("binaries: removes only the binaries of the release the marker names (no etcdutl for 3.4), the staged releases and the marker", () => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), "uninstall-"));
        try {
            const bin = path.join(d, "bin");
            const state = path.join(d, "state");
            fs.mkdirSync(bin);
            fs.mkdirSync(path.join(state, "releases", "etcd-v3.4.23-aaaaaaaaaaaaaaaa"), { recursive: true });
            for (const b of ["etcd", "etcdctl", "etcdutl", "etcdctl.sh", "kubectl"]) fs.writeFileSync(path.join(bin, b), b);
            fs.writeFileSync(path.join(state, "release"), `3.4.23 ${SHA}\n`);
            const vars = { owned_dirs: `${state} ${state}/releases`, bin_dir: bin, release_marker: `${state}/release`, releases_dir: `${state}/releases` };
            const r = run("etcd_ha_uninstall_binaries", vars);
            expect([r.status, r.stderr]).toEqual([0, ""]);
            expect(r.stdout).toBe(`removed (binaries of etcd 3.4.23 and staged releases): ${bin}/etcd ${bin}/etcdctl ${state}/releases ${state}/release\n`);
            expect(fs.readdirSync(bin).sort()).toEqual(["etcdctl.sh", "etcdutl", "kubectl"]);
            expect(fs.readdirSync(state)).toEqual([]);
            // Again: no marker any more, so the binaries left are not this program's: named, kept.
            const again = run("etcd_ha_uninstall_binaries", vars);
            expect(again.stdout).toBe(`removed (binaries and staged releases): nothing\nleft alone: ${bin}/etcdutl (no release marker ${state}/release: not installed by this program)\n`);
            expect(fs.readdirSync(bin).sort()).toEqual(["etcdctl.sh", "etcdutl", "kubectl"]);
        } finally {
            fs.rmSync(d, { recursive: true, force: true });
        }
    });

    it("certs: a file of someone else's in the PKI dir keeps the dir (named); a linked config dir is never gone through", () => {
        const d = fs.mkdtempSync(path.join(os.tmpdir(), "uninstall-"));
        const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "uninstall-elsewhere-"));
        try {
            const pkiDir = path.join(d, "etc", "pki");
            fs.mkdirSync(pkiDir, { recursive: true });
            for (const f of ["ca.crt", "server.crt", "server.key", "apiserver-etcd-client.key"]) fs.writeFileSync(path.join(pkiDir, f), f);
            const vars = { owned_dirs: `${d}/etc ${pkiDir}`, pki_dir: pkiDir, cert_files: "ca.crt server.crt server.key" };
            const r = run("etcd_ha_uninstall_certs", vars);
            expect([r.status, r.stderr]).toEqual([0, ""]);
            expect(r.stdout).toBe(`removed (certificates and keys): ${pkiDir}/ca.crt ${pkiDir}/server.crt ${pkiDir}/server.key\nleft alone: ${pkiDir} (not empty: apiserver-etcd-client.key)\n`);
            expect(fs.readdirSync(pkiDir)).toEqual(["apiserver-etcd-client.key"]);

            // The config dir a link to another dir holding keys of the same names: nothing there is touched.
            fs.mkdirSync(path.join(elsewhere, "pki"));
            fs.writeFileSync(path.join(elsewhere, "pki", "server.key"), "k");
            const linked = path.join(d, "linked");
            fs.symlinkSync(elsewhere, linked);
            const l = run("etcd_ha_uninstall_certs", { owned_dirs: `${linked} ${linked}/pki`, pki_dir: `${linked}/pki`, cert_files: "server.key" });
            expect([l.status, l.stderr]).toEqual([0, ""]);
            expect(l.stdout).toBe(`removed (certificates and keys): nothing\nleft alone: ${linked} (a symbolic link: not followed)\n`);
            expect(fs.readFileSync(path.join(elsewhere, "pki", "server.key"), "utf8")).toBe("k");
        } finally {
            fs.rmSync(d, { recursive: true, force: true });
            fs.rmSync(elsewhere, { recursive: true, force: true });
        }
    });
});
