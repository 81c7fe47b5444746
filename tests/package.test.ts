/**
 * The package schema as `pulumi package add <this repo>` generates it: PulumiPlugin.yaml launches the
 * nodejs plugin host, which requires package.json `main` (components/index.ts), finds the exported
 * ComponentResource classes and serves the schema the experimental Analyzer builds from their source
 * (constructor `args` interface → inputs, class properties → outputs). Generated here in-process.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { EtcdCluster, EtcdMember, EtcdPki } from "../components";

const ROOT = path.resolve(__dirname, "..");
const PKG = "etcd-ha";
const COMPONENTS = { EtcdCluster, EtcdPki, EtcdMember };

interface Prop {
    type?: string;
    $ref?: string;
    items?: Prop;
    optional?: boolean;
    plain?: boolean;
}
interface ResourceSpec {
    isComponent?: boolean;
    inputProperties: Record<string, Prop>;
    requiredInputs: string[];
    properties: Record<string, Prop>;
    required: string[];
}
interface Schema {
    name: string;
    resources: Record<string, ResourceSpec>;
    types: Record<string, { type: string; properties?: Record<string, Prop>; required?: string[] }>;
}

describe("package manifest", () => {
    test("PulumiPlugin.yaml declares the nodejs runtime", () => {
        const manifest = fs.readFileSync(path.join(ROOT, "PulumiPlugin.yaml"), "utf8");
        expect(manifest).toMatch(/^runtime:\s*nodejs\s*$/m);
    });

    test("package.json main is the TypeScript barrel the plugin host requires", () => {
        const pj = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; main: string };
        expect(pj.name).toBe(PKG);
        expect(pj.main).toBe("components/index.ts");
        expect(fs.existsSync(path.join(ROOT, pj.main))).toBe(true);
    });

    test.each(Object.keys(COMPONENTS))("%s: exactly one constructor, whose parameter is named args", (name) => {
        const file = { EtcdCluster: "components/etcdCluster.ts", EtcdPki: "components/pki/etcdPki.ts", EtcdMember: "components/etcd/member.ts" }[name]!;
        const src = fs.readFileSync(path.join(ROOT, file), "utf8");
        const ctors = [...src.matchAll(/\bconstructor\s*\(([^)]*)\)/g)];
        expect(ctors).toHaveLength(1);
        expect(ctors[0][1]).toMatch(new RegExp(`^\\s*name:\\s*string,\\s*args:\\s*${name}Args\\s*,`));
    });
});

describe("package build", () => {
    test("npm run build puts the shell helpers beside the compiled modules, and the compiled start step carries them", () => {
        const built = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
        expect(built.status).toBe(0);
        const source = fs.readFileSync(path.join(ROOT, "components", "etcd", "sh", "rolling.sh"), "utf8");
        const memberSh = fs.readFileSync(path.join(ROOT, "components", "etcd", "sh", "member.sh"), "utf8");
        // A fresh Node process, as a consumer's program loads the package.
        const probe = spawnSync(
            process.execPath,
            [
                "-e",
                `const r = require("./bin/components/etcd/rolling.js"); const s = require("./bin/components/etcd/scripts.js");
process.stdout.write(JSON.stringify({ file: r.ROLLING_SH, helpers: r.rollingHelpers(), leave: s.leaveScript({ name: "m1", peerUrl: "https://10.0.0.1:2380", clientUrl: "https://10.0.0.1:2379", dataDir: "/var/lib/etcd", clusterName: "c", turn: r.turnBounds(3) }) }));`,
            ],
            { cwd: ROOT, encoding: "utf8" },
        );
        expect(probe.stderr).toBe("");
        const out = JSON.parse(probe.stdout) as { file: string; helpers: string; leave: string };
        expect(out.file).toBe(path.join(ROOT, "bin", "components", "etcd", "sh", "rolling.sh"));
        expect(out.helpers).toBe(source);
        expect(out.leave).toContain(source.trimEnd());
        expect(out.leave).toContain(memberSh.trimEnd());
        expect(out.leave.trimEnd().split("\n").pop()).toBe("etcd_ha_leave");
    });
});

describe("package schema", () => {
    let schema: Schema;
    beforeAll(async () => {
        const provider = new ComponentProvider({ dirname: ROOT, name: PKG, components: Object.values(COMPONENTS) });
        schema = JSON.parse(await provider.getSchema()) as Schema;
    }, 120_000);

    test("names the package and holds the three components", () => {
        expect(schema.name).toBe(PKG);
        for (const name of Object.keys(COMPONENTS)) {
            const r = schema.resources[`${PKG}:index:${name}`];
            expect(r).toBeDefined();
            expect(r.isComponent).toBe(true);
        }
    });

    test("EtcdCluster inputs: hosts (required array of EtcdHost) and the optional settings", () => {
        const r = schema.resources[`${PKG}:index:EtcdCluster`];
        expect(Object.keys(r.inputProperties)).toEqual(
            expect.arrayContaining(["hosts", "topology", "etcd", "existingCa", "kubernetesFiles", "healthGate"]),
        );
        expect(r.requiredInputs).toEqual(["hosts"]);
        const hosts = r.inputProperties.hosts;
        expect(hosts.type).toBe("array");
        expect(hosts.items?.$ref).toBe(`#/types/${PKG}:index:EtcdHost`);
        const host = schema.types[`${PKG}:index:EtcdHost`];
        expect(host.type).toBe("object");
        expect(Object.keys(host.properties ?? {})).toEqual(expect.arrayContaining(["name", "fqdn", "address", "connection"]));
        expect(host.required).toEqual(expect.arrayContaining(["name", "fqdn", "address", "connection"]));
        expect(host.properties?.connection.$ref).toBe(`#/types/${PKG}:index:SshConnection`);
        expect(r.inputProperties.topology).toMatchObject({ type: "string", optional: true });
        for (const k of ["etcd", "existingCa", "kubernetesFiles", "healthGate"]) {
            expect(r.inputProperties[k].optional).toBe(true);
            expect(r.inputProperties[k].$ref).toMatch(new RegExp(`^#/types/${PKG}:index:`));
        }
    });

    test("EtcdCluster outputs: what Kubernetes, monitoring and operators consume", () => {
        const r = schema.resources[`${PKG}:index:EtcdCluster`];
        const outputs = [
            "clientEndpoints",
            "etcdServers",
            "caCertPem",
            "apiserverClientCertPem",
            "apiserverClientKeyPem",
            "kubeApiserverFlags",
            "kubeadmEtcdExternal",
            "metricsUrls",
            "prometheusScrapeConfig",
            "members",
            "quorum",
            "memberFaultTolerance",
            "hypervisorFaultTolerance",
            "health",
        ];
        expect(Object.keys(r.properties)).toEqual(expect.arrayContaining(outputs));
        expect(r.required).toEqual(expect.arrayContaining(outputs));
        expect(r.properties.clientEndpoints).toMatchObject({ type: "array", items: { type: "string" } });
        expect(r.properties.quorum.type).toBe("number");
        expect(r.properties.members.items?.$ref).toBe(`#/types/${PKG}:index:EtcdMemberInfo`);
    });

    test("every $ref to a package type resolves", () => {
        const refs = JSON.stringify(schema).match(new RegExp(`#/types/${PKG}:index:[A-Za-z0-9]+`, "g")) ?? [];
        for (const ref of new Set(refs)) expect(schema.types[ref.slice("#/types/".length)]).toBeDefined();
    });
});
