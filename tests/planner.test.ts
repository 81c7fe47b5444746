import {
    hypervisorFaultTolerance,
    initialClusterString,
    memberFaultTolerance,
    planTopology,
    quorumOf,
    spreadMembers,
    url,
} from "../components/topology/planner";

describe("quorumOf / memberFaultTolerance", () => {
    it.each([
        [1, 1, 0],
        [2, 2, 0],
        [3, 2, 1],
        [4, 3, 1],
        [5, 3, 2],
        [6, 4, 2],
        [7, 4, 3],
        [8, 5, 3],
        [51, 26, 25],
    ])("%i members: quorum %i, tolerates %i", (n, q, ft) => {
        expect(quorumOf(n)).toBe(q);
        expect(memberFaultTolerance(n)).toBe(ft);
    });
    it.each([0, -1, 2.5, NaN])("rejects %p", (n) => {
        expect(() => quorumOf(n)).toThrow(/member count must be a positive integer/);
    });
});

describe("hypervisorFaultTolerance (worst case: fullest hypervisors fail first)", () => {
    it.each([
        ["3 members on 3 hosts", [1, 1, 1], 1],
        ["3 members on 2 hosts", [2, 1], 0],
        ["3 members on 1 host", [3], 0],
        ["5 on 3 hosts (2,2,1)", [2, 2, 1], 1],
        ["5 on 5 hosts", [1, 1, 1, 1, 1], 2],
        ["6 on 2 hosts (the seed tutorial)", [3, 3], 0],
        ["6 on 3 hosts", [2, 2, 2], 1],
        ["7 on 3 hosts (3,2,2)", [3, 2, 2], 1],
        ["7 on 7 hosts", [1, 1, 1, 1, 1, 1, 1], 3],
        ["empty hypervisors do not count", [1, 0, 1, 0, 1], 1],
        ["no members", [], 0],
    ])("%s → %i", (_label, counts, expected) => {
        expect(hypervisorFaultTolerance(counts as number[])).toBe(expected);
    });
});

describe("spreadMembers", () => {
    const hv = ["pve1", "pve2", "pve3"];
    it("round-robins unpinned members across hypervisors in config order", () => {
        const out = spreadMembers<{ n: number; hypervisor?: string }>([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }], hv);
        expect(out.map((m) => m.hypervisor)).toEqual(["pve1", "pve2", "pve3", "pve1", "pve2"]);
    });
    it("keeps pinned members and fills the emptiest hypervisor", () => {
        const out = spreadMembers([{ hypervisor: "pve1" }, { hypervisor: "pve1" }, {}, {}], hv);
        expect(out.map((m) => m.hypervisor)).toEqual(["pve1", "pve1", "pve2", "pve3"]);
    });
    it("never moves an existing member when members are appended (no VM replaced on growth)", () => {
        const members: { hypervisor?: string }[] = [{}, { hypervisor: "pve3" }, {}, {}, {}, { hypervisor: "pve1" }, {}];
        for (let n = 1; n <= members.length; n++) {
            const prefix = spreadMembers(members.slice(0, n), hv).map((m) => m.hypervisor);
            const full = spreadMembers(members, hv).map((m) => m.hypervisor);
            expect(full.slice(0, n)).toEqual(prefix);
        }
    });
    it("balances within one member per hypervisor when nothing is pinned", () => {
        for (let n = 1; n <= 20; n++) {
            const counts = new Map<string, number>();
            for (const m of spreadMembers(Array.from({ length: n }, () => ({})), hv)) counts.set(m.hypervisor, (counts.get(m.hypervisor) ?? 0) + 1);
            const c = [...counts.values()];
            expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
        }
    });
    it("refuses an empty hypervisor list", () => {
        expect(() => spreadMembers([{}], [])).toThrow(/no hypervisors/);
    });
});

describe("initialClusterString", () => {
    const member = (i: number) => ({ name: `etcd${i}`, peerUrl: url("https", `10.103.0.${100 + i}`, 2380) });
    it.each([1, 3, 5, 7])("%i members: name=peerUrl pairs in member order", (n) => {
        const s = initialClusterString(Array.from({ length: n }, (_, i) => member(i + 1)));
        const pairs = s.split(",");
        expect(pairs).toHaveLength(n);
        pairs.forEach((p, i) => expect(p).toBe(`etcd${i + 1}=https://10.103.0.${101 + i}:2380`));
    });
    it("brackets IPv6 literals", () => {
        expect(url("https", "fd00::1", 2380)).toBe("https://[fd00::1]:2380");
    });
});

describe("planTopology", () => {
    const specs = (n: number, hvs?: string[]) =>
        Array.from({ length: n }, (_, i) => ({ name: `etcd${i + 1}`, address: `10.103.0.${101 + i}`, hypervisor: hvs ? hvs[i % hvs.length] : undefined }));

    it("derives URLs from the address and ports", () => {
        const p = planTopology(specs(3, ["a", "b", "c"]), { client: 12379, peer: 12380, metrics: 12381 });
        expect(p.members[1]).toMatchObject({
            name: "etcd2",
            clientUrl: "https://10.103.0.102:12379",
            peerUrl: "https://10.103.0.102:12380",
            metricsUrl: "http://10.103.0.102:12381",
        });
        expect(p.clientEndpoints).toEqual(["https://10.103.0.101:12379", "https://10.103.0.102:12379", "https://10.103.0.103:12379"]);
        expect(p.initialCluster).toBe("etcd1=https://10.103.0.101:12380,etcd2=https://10.103.0.102:12380,etcd3=https://10.103.0.103:12380");
    });

    it.each([
        ["3 on 3", 3, ["a", "b", "c"], []],
        ["1 member", 1, ["a"], ["single-member"]],
        ["2 on 2", 2, ["a", "b"], ["even-members", "hypervisor-quorum"]],
        ["6 on 2 (seed tutorial)", 6, ["a", "b"], ["even-members", "hypervisor-quorum"]],
        ["3 on 2", 3, ["a", "b"], ["hypervisor-quorum"]],
        ["5 on 3", 5, ["a", "b", "c"], []],
        ["9 on 9", 9, ["a", "b", "c", "d", "e", "f", "g", "h", "i"], ["too-many-members"]],
        ["8 on 8", 8, ["a", "b", "c", "d", "e", "f", "g", "h"], ["even-members", "too-many-members"]],
    ])("%s → warnings %j", (_l, n, hvs, codes) => {
        expect(planTopology(specs(n as number, hvs as string[])).warnings.map((w) => w.code)).toEqual(codes);
    });

    it("names the fullest hypervisor and the quorum in the hypervisor warning", () => {
        const p = planTopology(specs(6, ["pve1", "pve2"]));
        const w = p.warnings.find((x) => x.code === "hypervisor-quorum")!;
        expect(w.message).toBe(
            "losing hypervisor pve1 (3 of 6 members) loses quorum (4 needed): spread members so that no hypervisor holds more than 2, which needs at least 3 hypervisors",
        );
        expect(p.faultTolerance).toEqual({ members: 2, hypervisors: 0 });
        expect(p.membersPerHypervisor).toEqual([
            { hypervisor: "pve1", members: 3 },
            { hypervisor: "pve2", members: 3 },
        ]);
    });

    it("reports unknown hypervisor tolerance (null) for hosts without a failure domain, and no hypervisor warning", () => {
        const p = planTopology(specs(3));
        expect(p.faultTolerance).toEqual({ members: 1, hypervisors: null });
        expect(p.warnings).toEqual([]);
    });
});
