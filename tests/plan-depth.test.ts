/**
 * Members install in parallel: the plan's longest dependency chain is the same for 3, 5, 7 and 51 members,
 * and the health gate is the only step that waits for all of them.
 */
import { computePlan } from "../tools/planLib";
import { flatConfig } from "./helpers/configs";

function poolStack(n: number) {
    const hostsCfg = Array.from({ length: n }, (_, i) => ({ name: `m${i + 1}`, address: `10.20.${Math.floor(i / 200)}.${(i % 200) + 10}` }));
    const { config, secretKeys } = flatConfig({ clusterName: "depth", hosts: hostsCfg }, new Set(["sshPrivateKey"]));
    return { project: "etcd-ha", stack: `depth${n}`, config, secretKeys };
}

describe("plan depth", () => {
    it.each([3, 5, 7, 51])("%i members: depth 6, 5 steps per member, one gate depending on every start", async (n) => {
        const p = await computePlan(poolStack(n));
        if (!p.ok) throw new Error(JSON.stringify(p.errors));
        expect(p.plan.depth).toBe(6);
        const gate = p.plan.resources.find((r) => r.name === "depth-health")!;
        expect(gate.dependsOn).toEqual(Array.from({ length: n }, (_, i) => `depth-m${i + 1}-start`).sort());
        expect(p.plan.resources.filter((r) => r.type === "command:remote:Command")).toHaveLength(5 * n + 1);
    });
});
