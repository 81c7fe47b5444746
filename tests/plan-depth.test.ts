/**
 * Members' steps run in parallel, start steps too (a new cluster bootstraps at once; a live cluster's
 * members take turns at run time, through an etcd lock): the plan has the same depth whatever the size, and
 * the health gate waits for every start.
 */
import { computePlan } from "../tools/planLib";
import { flatConfig, testHostKey } from "./helpers/configs";

function poolStack(n: number) {
    const hostsCfg = Array.from({ length: n }, (_, i) => ({ name: `m${i + 1}`, address: `10.20.${Math.floor(i / 200)}.${(i % 200) + 10}`, hostKey: testHostKey(`m${i + 1}`) }));
    const { config, secretKeys } = flatConfig({ clusterName: "depth", hosts: hostsCfg }, new Set(["sshPrivateKey"]));
    return { project: "etcd-ha", stack: `depth${n}`, config, secretKeys };
}

describe("plan depth", () => {
    it.each([3, 5, 7, 15, 51])("%i members: depth 7 whatever the size, 6 steps per member, no start waiting for another, one gate depending on every start", async (n) => {
        const p = await computePlan(poolStack(n));
        if (!p.ok) throw new Error(JSON.stringify(p.errors));
        // stack → prepare | upgrade snapshot → binaries → start → health gate → maintenance | teardown, as
        // resource levels.
        expect(p.plan.depth).toBe(7);
        const starts = p.plan.resources.filter((r) => r.name.endsWith("-start"));
        starts.forEach((st, i) => {
            const want = [`depth-m${i + 1}-binaries`, `depth-m${i + 1}-certs`, `depth-m${i + 1}-config`];
            expect(st.dependsOn.filter((d) => d !== "depth-token" && !d.startsWith("depth-pki-"))).toEqual(want.sort());
            // The start command carries the certificates' digest (a renewal re-runs it): it depends on them.
            expect(st.dependsOn).toEqual(expect.arrayContaining(["depth-pki-ca", `depth-pki-m${i + 1}-server`, `depth-pki-m${i + 1}-peer`]));
        });
        const gate = p.plan.resources.find((r) => r.name === "depth-health")!;
        expect(gate.dependsOn).toEqual(Array.from({ length: n }, (_, i) => `depth-m${i + 1}-start`).sort());
        // Every member's binaries wait for the pre-upgrade snapshot; its maintenance step for its start and the gate.
        p.plan.resources.filter((r) => r.name.endsWith("-binaries")).forEach((b, i) => expect(b.dependsOn.sort()).toEqual([`depth-m${i + 1}-prepare`, "depth-upgrade-snapshot"]));
        // So does its config step (the unit carries the release's flags).
        p.plan.resources.filter((r) => r.name.endsWith("-config")).forEach((c, i) => expect(c.dependsOn.sort()).toEqual([`depth-m${i + 1}-prepare`, "depth-upgrade-snapshot"]));
        p.plan.resources.filter((r) => r.name.endsWith("-maintenance")).forEach((mt, i) => expect(mt.dependsOn.sort()).toEqual(["depth-health", `depth-m${i + 1}-start`]));
        expect(p.plan.resources.filter((r) => r.type === "command:remote:Command")).toHaveLength(6 * n + 3);
    });
});
