/**
 * The per-member plan (components/etcd/memberPlan.ts): computed once from the cluster's settings, it holds
 * what every step of the member renders from. Asserted on directly, without any Pulumi runtime.
 */
import { planMember } from "../components/etcd/memberPlan";
import { EtcdOptions, resolveEtcdOptions } from "../components/etcd/options";
import { parseUnit } from "../components/etcd/flags";

const ENDPOINTS = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"];
const CLUSTER = "etcd1=https://10.0.0.11:2380,etcd2=https://10.0.0.12:2380,etcd3=https://10.0.0.13:2380";

function plan(etcd: EtcdOptions = {}, more: { turn?: { waitSeconds: number; holdSeconds: number } } = {}) {
    const resolved = resolveEtcdOptions(etcd);
    if (!resolved.ok) throw new Error(JSON.stringify(resolved.issues));
    return planMember({ host: { name: "etcd2", address: "10.0.0.12" }, clusterName: "prod", etcd: resolved.value, initialCluster: CLUSTER, clientEndpoints: ENDPOINTS, certFiles: ["server", "peer", "admin"], ...more });
}

describe("planMember", () => {
    it("the member's URLs, the others' endpoints and the planned cluster", () => {
        const p = plan();
        expect(p).toMatchObject({ name: "etcd2", address: "10.0.0.12", clusterName: "prod", peerUrl: "https://10.0.0.12:2380", clientUrl: "https://10.0.0.12:2379", initialCluster: CLUSTER, dataDir: "/var/lib/etcd" });
        expect(p.others).toEqual(["https://10.0.0.11:2379", "https://10.0.0.13:2379"]);
        expect(p.endpoints).toEqual(ENDPOINTS);
    });

    it("the pinned release with its sha256 and version facts; downloaded from the release URL by default", () => {
        const p = plan({ version: "3.5.21" });
        expect(p.release).toEqual({ version: "3.5.21", sha256: expect.stringMatching(/^[0-9a-f]{64}$/), arch: "amd64" });
        expect(p.features.hasEtcdutl).toBe(true);
        expect(p.source).toEqual({ kind: "download", url: "https://github.com/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz" });
        expect(p.pushTarball).toBeUndefined();
        expect(plan({ version: "3.4.3" }).features.hasEtcdutl).toBe(false);
    });

    it("a pushed release: the operator's tarball and the staging path it is copied to", () => {
        const p = plan({ version: "3.5.21", install: { method: "push", tarball: "/srv/etcd-v3.5.21-linux-amd64.tar.gz" } });
        expect(p.source).toEqual({ kind: "push", path: "/var/tmp/etcd-ha/etcd-v3.5.21-linux-amd64.tar.gz" });
        expect(p.pushTarball).toBe("/srv/etcd-v3.5.21-linux-amd64.tar.gz");
    });

    it("the config files: the unit (0600 root) with this member's flags, the etcdctl environment and its wrapper", () => {
        const p = plan({ version: "3.5.21" });
        expect(p.configFiles.map((f) => `${f.path} ${f.mode} ${f.owner}`)).toEqual([
            "/etc/systemd/system/etcd.service 0600 root:root",
            "/etc/etcd/etcdctl.env 0644 root:root",
            "/usr/local/bin/etcdctl.sh 0755 root:root",
        ]);
        expect(p.configFiles[0].content).toBe(p.unit);
        const flags = parseUnit(p.unit).execStart.flags;
        expect(flags.get("name")).toBe("etcd2");
        expect(flags.get("advertise-client-urls")).toBe("https://10.0.0.12:2379");
        expect(p.configFiles[1].content).toContain(`ETCDCTL_ENDPOINTS=${ENDPOINTS.join(",")}`);
    });

    it("the certificate files: the CA, then each pair, keys 0600", () => {
        expect(plan().certFiles).toEqual([
            { name: "ca.crt", mode: "0644" },
            { name: "server.crt", mode: "0644" },
            { name: "server.key", mode: "0600" },
            { name: "peer.crt", mode: "0644" },
            { name: "peer.key", mode: "0600" },
            { name: "admin.crt", mode: "0644" },
            { name: "admin.key", mode: "0600" },
        ]);
    });

    it("turn bounds: given, or grown with the cluster (every other member's turn may come first)", () => {
        expect(plan().turn).toEqual({ waitSeconds: 300 + 120 * 3, holdSeconds: 900 });
        expect(plan({}, { turn: { waitSeconds: 10, holdSeconds: 20 } }).turn).toEqual({ waitSeconds: 10, holdSeconds: 20 });
    });
});
