/**
 * Day-2 operations as config changes, applied by later real `pulumi up` runs against real etcd, with a
 * continuous writer on the three original members throughout:
 * - scale out 3 → 5: learner join + promote, one at a time; untouched members keep their PID and ID;
 * - scale in 5 → 3: each removed member's delete step leaves the cluster (dependents first), then its
 *   host goes away; the outputs follow;
 * - a rebuilt host whose SSH host key the stack does not trust yet: every step on it is refused at the
 *   handshake, nothing reaches the machine;
 * - replace a lost member (its host rebuilt empty, its new key trusted) with `etcd-ha:replace`: same name and
 *   address, a new member ID, data intact, the others untouched;
 * Every acknowledged write is on every member at the end; figures are printed.
 */
import { spawnSync } from "child_process";
import { formatFigures, verifyAcknowledged } from "../tools/lab/faults/writer";
import { inHost, PROJECT_ROOT } from "../tools/lab/hosts";
import { expectRolling, labSuite } from "./helpers/labSuite";

const PREFIX = "127.66.4";
const suite = labSuite({ name: "day2", prefix: PREFIX, figuresTitle: "day-2 figures:" });
const { lab, figures, log, hosts, up } = suite;
/** Changes run under the Go writer (etcd's client, as kube-apiserver uses it), which also counts leader changes. */
const underWriter = suite.underGoWriter;
const endpointOf = (h: { address: string }) => `https://${h.address}:2379`;

interface Member {
    ID: string;
    name: string;
    peerURLs: string[];
    clientURLs?: string[];
    isLearner?: boolean;
}

function members(endpoints: string[]): Member[] {
    const tls = suite.tls();
    const r = spawnSync("etcdctl", [`--endpoints=${endpoints.join(",")}`, `--cacert=${tls.cacert}`, `--cert=${tls.cert}`, `--key=${tls.key}`, "--dial-timeout=2s", "--command-timeout=5s", "-w", "json", "member", "list"], {
        encoding: "utf8",
        env: { ...process.env, ETCDCTL_API: "3" },
        timeout: 20_000,
    });
    if (r.status !== 0) throw new Error(`member list failed: ${r.stderr}`);
    // IDs are uint64: keep them as text.
    const json = r.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"');
    return (JSON.parse(json) as { members: Member[] }).members.map((m) => ({ ...m, ID: BigInt(m.ID).toString(16) }));
}

const idsByName = (ms: Member[]) => Object.fromEntries(ms.map((m) => [m.name, m.ID]));
const pids = (names: string[]) => Object.fromEntries(hosts().filter((h) => names.includes(h.name)).map((h) => [h.name, lab.etcdPid(h)]));

describe("day-2 as config changes", () => {
    const original = ["etcd1", "etcd2", "etcd3"];
    let before: Record<string, string>;

    test("scale out 3 → 5: learners join one at a time and are promoted; the three running members are not restarted", async () => {
        const eps = hosts().map(endpointOf);
        const logFrom = log.length;
        before = idsByName(members(eps));
        const pidsBefore = pids(original);
        const { report, result } = await underWriter(eps, "/day2/scale-out/", () => up({ members: 5 }));
        const after = members(hosts().map(endpointOf));
        expect(after.map((m) => m.name).sort()).toEqual(["etcd1", "etcd2", "etcd3", "etcd4", "etcd5"]);
        expect(after.every((m) => !m.isLearner && (m.clientURLs ?? []).length === 1)).toBe(true);
        for (const n of original) expect(idsByName(after)[n]).toBe(before[n]);
        expect(pids(original)).toEqual(pidsBefore);
        // Joins: learner add and promotion, one member's turn after the other's (their start steps ran at once).
        const turns = expectRolling(log.slice(logFrom), ["etcd4", "etcd5"]);
        const joined = log.slice(logFrom).filter((l) => /etcd-etcd[45]-start \| promoted etcd[45]/.test(l));
        expect(joined.map((l) => /promoted (etcd\d)/.exec(l)![1])).toEqual(turns.map((t) => t.member));
        const step = (n: string) => result.steps.find((s) => s.name === `etcd-${n}-start`)!;
        expect(step("etcd5").startMs).toBeLessThan(step("etcd4").endMs);
        for (const n of original) expect(log.some((l) => l.includes(`etcd-${n}-start | etcd is running with this configuration: nothing to do`))).toBe(true);
        // Outputs follow the members.
        expect(result.outputs.clientEndpoints).toEqual(hosts().map(endpointOf));
        expect(String(result.outputs.kubeadmEtcdExternal)).toContain(endpointOf(hosts()[4]));
        const v = await verifyAcknowledged(report, hosts().map(endpointOf), suite.tls(), "/day2/scale-out/");
        figures.push(formatFigures("scale-out 3→5", report, { lost: v.lost.length, leader_changes: report.leaderChanges, run_s: result.programSeconds.toFixed(1) }));
        expect(report.failed).toBe(0);
        expect(report.acknowledged).toBeGreaterThan(50);
        expect(v.lost).toEqual([]);
    }, 300_000);

    test("scale in 5 → 3: each removed member leaves the cluster in its turn before its host goes; writes go on", async () => {
        const eps = hosts().slice(0, 3).map(endpointOf);
        const logFrom = log.length;
        const pidsBefore = pids(original);
        const { report, result } = await underWriter(eps, "/day2/scale-in/", () => up({ members: 3 }));
        const after = members(eps);
        expect(after.map((m) => m.name).sort()).toEqual(original);
        for (const n of original) expect(idsByName(after)[n]).toBe(before[n]);
        expect(pids(original)).toEqual(pidsBefore);
        const deletes = result.steps.filter((s) => s.op === "delete" && s.name.endsWith("-start"));
        expect(deletes.map((s) => s.name).sort()).toEqual(["etcd-etcd4-start", "etcd-etcd5-start"]);
        // One removal at a time, taken at run time.
        expectRolling(log.slice(logFrom), ["etcd4", "etcd5"]);
        // The gate passed on the three planned members and named the two still listed (their deletes ran after it).
        expect(String(result.outputs.health)).toMatch(/^healthy: 3\/3 members after \d+ attempt\(s\) in \d+s; still listed, removed at the end of this run: etcd[45] etcd[45]$/);
        for (const n of ["etcd5", "etcd4"]) {
            expect(log.some((l) => new RegExp(`etcd-${n}-start \\| removed ${n} \\([0-9a-f]+\\); the remaining cluster is healthy`).test(l))).toBe(true);
            expect(log.some((l) => l.includes(`etcd-${n}-start | stopped etcd on ${n} and wiped its data (/var/lib/etcd/member)`))).toBe(true);
        }
        expect(hosts().map((h) => h.name)).toEqual(original);
        expect(result.outputs.clientEndpoints).toEqual(eps);
        const v = await verifyAcknowledged(report, eps, suite.tls(), "/day2/scale-in/");
        figures.push(formatFigures("scale-in 5→3", report, { lost: v.lost.length, leader_changes: report.leaderChanges, run_s: result.programSeconds.toFixed(1) }));
        expect(v.lost).toEqual([]);
        expect(report.acknowledged).toBeGreaterThan(50);
        // At most one election per removal (a removed leader): no failures outside it.
        expect(report.failed).toBeLessThanOrEqual(2);
    }, 300_000);

    test("a machine at a member's address with another SSH host key is refused before anything is sent to it", async () => {
        // etcd2's VM is lost and another machine (new host keys, empty disk) answers at its address, while the
        // stack still pins etcd2's old key: to the program, an impostor.
        const t0 = Date.now();
        await lab.recreateHost("etcd2", { trustNewKey: false });
        const h = hosts().find((x) => x.name === "etcd2")!;
        // The run as an operator starts it (`npm run lab -- up`, in its own process): it fails, exit status 1.
        const tRun = Date.now();
        const run = spawnSync("npx", ["ts-node", "--transpile-only", "tools/lab/cli.ts", "up", "--prefix", PREFIX, "--replace", "etcd2"], {
            cwd: PROJECT_ROOT,
            encoding: "utf8",
            env: { ...process.env, ETCD_HA_LAB_DIR: suite.dir },
            timeout: 240_000,
        });
        const runSeconds = (Date.now() - tRun) / 1000;
        // The real provider's own words, through the engine.
        expect(run.status).toBe(1);
        expect(run.stderr).toMatch(/^lab: pulumi up failed/m);
        expect(run.stderr).toMatch(/after 10 failed attempts: ssh: handshake failed: ssh: host key mismatch/);
        // Every step on etcd2 was refused at the handshake: none ran, no file was copied.
        const lines = run.stdout.split("\n");
        expect(lines.filter((l) => /^ [+~-]{1,2}\s+\S+ etcd-etcd2-\S+ (created|updated|replaced) /.test(l))).toEqual([]);
        expect(lines.some((l) => /etcd-etcd2-prepare.*Dial 1\/10 failed: retrying/.test(l))).toBe(true);
        // Nothing of the cluster's arrived on the machine: no etcd user, PKI, config, binaries, staged tarball,
        // nothing on its (empty, freshly attached) etcd disk, and its sshd accepted no login at all.
        const probe = inHost(h, [
            "sh",
            "-c",
            "getent passwd etcd || true; ls -d /etc/etcd /var/lib/etcd-ha /var/tmp/etcd-ha /usr/local/bin/etcd /etc/systemd/system/etcd.service 2>/dev/null || true; find /var/lib/etcd -mindepth 1; journalctl -u ssh --no-pager -o cat | grep -c '^Accepted ' || true",
        ]);
        expect(probe.trim().split("\n")).toEqual(["0"]);
        // The operator checks the new machine's key on its console and trusts it: the replace then goes on (next test).
        expect(lab.trustHostKeys(["etcd2"])[0].hostKey).not.toBe(undefined);
        figures.push(`changed host key: every step on etcd2 refused at the handshake in ${runSeconds.toFixed(1)}s, nothing sent (test ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    }, 300_000);

    test("replace a lost member: its host rebuilt empty, `replace: [etcd2]` re-adds it with a new ID; data intact", async () => {
        const eps = hosts().map(endpointOf);
        const survivors = eps.filter((e) => !e.includes(`${PREFIX}.12:`));
        const pidsBefore = pids(["etcd1", "etcd3"]);
        // etcd2's host was rebuilt empty in the previous test (its new key trusted since).
        const { report, result } = await underWriter(survivors, "/day2/replace/", async () => {
            // Nothing in the program changed but etcd2's host key, so without the switch a run would only
            // re-run etcd2's steps as updates.
            return up({ replace: ["etcd2"] });
        });
        const after = members(eps);
        expect(after.map((m) => m.name).sort()).toEqual(original);
        expect(idsByName(after).etcd2).not.toBe(before.etcd2);
        expect(idsByName(after).etcd1).toBe(before.etcd1);
        expect(idsByName(after).etcd3).toBe(before.etcd3);
        expect(pids(["etcd1", "etcd3"])).toEqual(pidsBefore);
        // Every step of etcd2 ran again on its new host; nothing of etcd1 or etcd3 did but their start checks.
        const ran = result.steps.filter((s) => s.op === "update" || s.op === "replace").map((s) => s.name);
        expect(ran.filter((n) => n.startsWith("etcd-etcd2-")).sort()).toEqual(["etcd-etcd2-binaries", "etcd-etcd2-certs", "etcd-etcd2-config", "etcd-etcd2-maintenance", "etcd-etcd2-prepare", "etcd-etcd2-start", "etcd-etcd2-tarball"]);
        expect(ran.filter((n) => /etcd-etcd[13]-/.test(n))).toEqual([]);
        const v = await verifyAcknowledged(report, eps, suite.tls(), "/day2/replace/");
        figures.push(formatFigures("replace etcd2", report, { lost: v.lost.length, leader_changes: report.leaderChanges, run_s: result.programSeconds.toFixed(1) }));
        expect(v.lost).toEqual([]);
        expect(v.perMember.every((m) => m.missing.length === 0)).toBe(true);
        // Taking the switch out afterwards re-runs etcd2's steps once more, and they find nothing to do.
        const settle = await up({});
        expect(settle.created).toBe(0);
        // The tarball copy's trigger goes with the switch: copied once more (its old half deleted, a no-op).
        expect(settle.steps.filter((s) => s.op === "replace" || s.op === "delete").map((s) => s.name)).toEqual(["etcd-etcd2-tarball", "etcd-etcd2-tarball"]);
        expect(log.some((l) => l.includes("etcd-etcd2-start | etcd is running with this configuration: nothing to do"))).toBe(true);
        expect(idsByName(members(eps)).etcd2).toBe(idsByName(after).etcd2);
    }, 300_000);
});
