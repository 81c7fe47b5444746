/**
 * Every Proxmox resource type and input property the program sends exists in the schema of the proxmoxve
 * plugin the engine runs. The npm SDK is 8.6.0, but the plugin built here is the 8.3.0 source stamped 8.6.0
 * (docs/proxmox-provider.md), so a property only the 8.6.0 SDK knows would pass the type check and fail at
 * run time. The schema is read from the plugin binary itself (`pulumi package get-schema`), never from the
 * SDK; the program runs under mocks on the three Proxmox stacks plus a variant of the dev stack that turns
 * on what they leave off (PVE 8 HA groups, a node without snippets, VLAN/MTU/gateway on the bridge, extra
 * firewall rules, the ssh-agent), and every input is walked recursively against the schema.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawnSync } from "child_process";
import { engine } from "../tools/lab/pulumi";
import { RecordedResource, runProgram } from "../tools/engine/mockHost";
import { planNewResource } from "../tools/engine/planOutputs";
import { ROOT, stackRun } from "./helpers/stacks";
import { fakePem, isSecretInput, plain, T } from "./helpers/tokens";

/** The plugin version the SDK asks the engine for (the `pulumi` block of its package.json). */
const SDK_PLUGIN_VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "@muhlba91", "pulumi-proxmoxve", "package.json"), "utf8")).pulumi.version;

const SECRETS = {
    "etcd-ha:proxmoxApiToken": "pulumi@pve!etcd-ha=00000000-0000-0000-0000-000000000000",
    "etcd-ha:proxmoxSshPrivateKey": fakePem("OPENSSH PRIVATE KEY", "hypervisor-key-body"),
    "etcd-ha:sshPrivateKey": fakePem("OPENSSH PRIVATE KEY", "member-key-body"),
};

/** The subset of a Pulumi package schema this test reads. */
interface PropertySpec {
    type?: string;
    $ref?: string;
    items?: PropertySpec;
    additionalProperties?: PropertySpec;
    oneOf?: PropertySpec[];
    deprecationMessage?: string;
}
interface ObjectSpec {
    type?: string;
    properties?: Record<string, PropertySpec>;
    enum?: { value: unknown }[];
}
interface ResourceSpec {
    inputProperties?: Record<string, PropertySpec>;
    requiredInputs?: string[];
    deprecationMessage?: string;
}
interface PackageSchema {
    name: string;
    version?: string;
    provider: ResourceSpec;
    resources: Record<string, ResourceSpec>;
    types: Record<string, ObjectSpec>;
}

/** The proxmoxve plugin binary the engine loads for the SDK's version, from the Pulumi home of tools/pulumi-build.sh. */
function pluginBinary(): string {
    const { home } = engine();
    const bin = path.join(home, "plugins", `resource-proxmoxve-v${SDK_PLUGIN_VERSION}`, "pulumi-resource-proxmoxve");
    if (!fs.existsSync(bin)) {
        throw new Error(`no proxmoxve plugin at ${bin}: run \`bash tools/pulumi-build.sh\` (or \`pulumi plugin install resource proxmoxve v${SDK_PLUGIN_VERSION}\` with an installed CLI)`);
    }
    return bin;
}

/** The plugin's own schema (`pulumi package get-schema <binary>`: the binary answers GetSchema; about 2 s). */
function pluginSchema(binary: string): PackageSchema {
    const { bin, home } = engine();
    // Outside the repository: `pulumi package` refuses a directory holding both PulumiPlugin.yaml and Pulumi.yaml.
    const r = spawnSync(path.join(bin, "pulumi"), ["package", "get-schema", binary], {
        cwd: os.tmpdir(),
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 120_000,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PULUMI_HOME: home, PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" },
    });
    if (r.status !== 0) throw new Error(`pulumi package get-schema ${binary} failed (exit ${r.status ?? r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout) as PackageSchema;
}

/** What the schema check found: properties the schema lacks (failures) and deprecated ones the program uses. */
export interface SchemaReport {
    missing: string[];
    deprecated: string[];
    /** `<type> <path>` of every property checked, list indices left out (proves the walk went deep). */
    visited?: Set<string>;
}

const TYPES_REF = "#/types/";

/** The resource spec for a registered type, or undefined when the schema has no such resource. */
function specOf(schema: PackageSchema, type: string): ResourceSpec | undefined {
    return type === `pulumi:providers:${schema.name}` ? schema.provider : schema.resources[type];
}

/**
 * Walks one registration's inputs against the schema: every key (recursively into objects, lists and maps)
 * must be a schema property; every required input must be there. The provider's inputs arrive as the SDK
 * sends them to a provider (objects as JSON text), so text is parsed where the schema expects structure.
 */
export function checkRegistration(schema: PackageSchema, r: { type: string; name: string; inputs: Record<string, unknown> }, report: SchemaReport): void {
    const where = `${r.type} (${r.name})`;
    const spec = specOf(schema, r.type);
    if (!spec) {
        report.missing.push(`${where}: the resource type is not in the plugin's schema`);
        return;
    }
    if (spec.deprecationMessage) report.deprecated.push(`${r.type}: ${spec.deprecationMessage.split("\n")[0]}`);
    const inputs = Object.fromEntries(Object.entries(r.inputs).filter(([, v]) => v !== undefined));
    walkObject(schema, inputs, spec.inputProperties ?? {}, "", where, report);
    for (const k of spec.requiredInputs ?? []) if (!(k in inputs)) report.missing.push(`${where}: required input ${k} is not sent`);
}

function walkObject(schema: PackageSchema, value: Record<string, unknown>, props: Record<string, PropertySpec>, at: string, where: string, report: SchemaReport): void {
    for (const [k, v] of Object.entries(value)) {
        const p = at ? `${at}.${k}` : k;
        const prop = props[k];
        if (!prop) {
            report.missing.push(`${where}: ${p} is not an input of the plugin's schema`);
            continue;
        }
        if (prop.deprecationMessage) report.deprecated.push(`${where.split(" ")[0]}: ${p}: ${prop.deprecationMessage.split("\n")[0]}`);
        report.visited?.add(`${where.split(" ")[0]} ${p.replace(/\[\d+\]/g, "")}`);
        walkValue(schema, v, prop, p, where, report);
    }
}

function walkValue(schema: PackageSchema, raw: unknown, prop: PropertySpec, at: string, where: string, report: SchemaReport): void {
    let v = plain(raw);
    if (v === undefined || v === null) return;
    const structured = prop.type === "array" || (prop.type === "object" && prop.additionalProperties) || prop.$ref?.startsWith(TYPES_REF);
    if (structured && typeof v === "string") {
        try {
            v = JSON.parse(v);
        } catch {
            return; // an unknown or a plain string where the schema allows one (an enum's value)
        }
    }
    for (const alt of prop.oneOf ?? []) return walkValue(schema, v, alt, at, where, report);
    if (prop.type === "array" && Array.isArray(v)) {
        v.forEach((item, i) => walkValue(schema, item, prop.items ?? {}, `${at}[${i}]`, where, report));
    } else if (prop.type === "object" && prop.additionalProperties && typeof v === "object") {
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) walkValue(schema, item, prop.additionalProperties, `${at}.${k}`, where, report);
    } else if (prop.$ref?.startsWith(TYPES_REF)) {
        const token = decodeURIComponent(prop.$ref.slice(TYPES_REF.length));
        const t = schema.types[token];
        if (!t) report.missing.push(`${where}: ${at}: the schema names type ${token} but does not define it`);
        else if (t.enum) {
            if (!t.enum.some((e) => e.value === v)) report.missing.push(`${where}: ${at}: ${JSON.stringify(v)} is not one of the schema's values for ${token}`);
        } else if (typeof v === "object" && !Array.isArray(v)) walkObject(schema, v as Record<string, unknown>, t.properties ?? {}, at, where, report);
        else report.missing.push(`${where}: ${at}: the schema expects an object (${token}), the program sends ${JSON.stringify(v)}`);
    }
}

/** The Proxmox registrations of one program run (the provider and every `proxmoxve:` resource). */
async function proxmoxRegistrations(config: Record<string, string>, base: ReturnType<typeof stackRun>): Promise<RecordedResource[]> {
    const record: RecordedResource[] = [];
    await runProgram({ ...base, config, newResource: planNewResource, record });
    return record.filter((r) => r.type.startsWith("proxmoxve:") || r.type === T.pveProvider);
}

/** The dev stack with every optional Proxmox input on that the three stacks leave off. */
function everyOptionConfig(base: ReturnType<typeof stackRun>): Record<string, string> {
    const c = { ...base.config };
    const get = (k: string) => JSON.parse(c[`etcd-ha:${k}`]);
    const set = (k: string, v: unknown) => (c[`etcd-ha:${k}`] = JSON.stringify(v));
    const proxmox = get("proxmox");
    set("proxmox", {
        ...proxmox,
        ssh: { username: "root", agent: true },
        ha: { enabled: true, pveMajor: 8 },
        cpuType: "x86-64-v3",
        firewall: { ...proxmox.firewall, extraRules: [{ port: "30000:32767", proto: "udp", sources: ["10.103.0.0/24"], comment: "node ports" }] },
    });
    const hypervisors = get("hypervisors");
    hypervisors[0].bridge = { ...hypervisors[0].bridge, gateway: "10.103.0.1", vlanAware: true, vlanId: 103, mtu: 9000 };
    delete hypervisors[2].datastores.snippets;
    set("hypervisors", hypervisors);
    set("ssh", { ...get("ssh"), insecureIgnoreHostKeys: true });
    delete c["etcd-ha:proxmoxSshPrivateKey"];
    return c;
}

describe(`the proxmoxve plugin's schema (the binary the engine loads for SDK ${SDK_PLUGIN_VERSION})`, () => {
    let schema: PackageSchema;
    beforeAll(() => {
        schema = pluginSchema(pluginBinary());
    }, 300_000);

    it("is the proxmoxve package and defines the resources the program's tokens name", () => {
        expect(schema.name).toBe("proxmoxve");
        for (const t of [T.bridge, T.image, T.snippet, T.vm, T.fwOptions, T.fwRules, T.haResource, T.haRule, T.haGroup]) expect([t, t in schema.resources]).toEqual([t, true]);
    });

    it("the check names the resource type and property path of anything the schema lacks", () => {
        const report: SchemaReport = { missing: [], deprecated: [] };
        checkRegistration(schema, { type: T.vm, name: "x-vm", inputs: { nodeName: "pve1", cpu: { cores: 2, sockte: 1 }, disks: [{ interface: "scsi0", speedLimit: 1 }], bogus: true } }, report);
        checkRegistration(schema, { type: T.pveProvider, name: "p", inputs: { endpoint: "https://pve:8006/", ssh: JSON.stringify({ username: "root", nodes: [{ name: "pve1", adress: "10.0.0.1" }] }) } }, report);
        checkRegistration(schema, { type: "proxmoxve:index/notThere:NotThere", name: "n", inputs: {} }, report);
        expect(report.missing).toEqual([
            `${T.vm} (x-vm): cpu.sockte is not an input of the plugin's schema`,
            `${T.vm} (x-vm): disks[0].speedLimit is not an input of the plugin's schema`,
            `${T.vm} (x-vm): bogus is not an input of the plugin's schema`,
            `${T.pveProvider} (p): ssh.nodes[0].adress is not an input of the plugin's schema`,
            "proxmoxve:index/notThere:NotThere (n): the resource type is not in the plugin's schema",
        ]);
    });

    const stacks: [string, string][] = [
        ["Pulumi.dev.yaml", "Pulumi.dev.yaml"],
        ["examples/Pulumi.six-on-two.yaml", "examples/Pulumi.six-on-two.yaml"],
        ["examples/Pulumi.stacked-five.yaml", "examples/Pulumi.stacked-five.yaml"],
        ["Pulumi.dev.yaml with every optional Proxmox input (PVE 8 HA groups, no snippets on pve3, VLAN/MTU/gateway, extra rules, ssh-agent)", "Pulumi.dev.yaml"],
    ];
    it.each(stacks)("%s: every resource type and input property is in the schema", async (label, file) => {
        const base = stackRun(file, SECRETS);
        const config = label === file ? base.config : everyOptionConfig(base);
        const regs = await proxmoxRegistrations(config, base);
        // The run reaches the Proxmox layer (otherwise the check would pass on nothing).
        expect(regs.filter((r) => r.type === T.vm).length).toBeGreaterThanOrEqual(3);
        const report: SchemaReport = { missing: [], deprecated: [], visited: new Set() };
        for (const r of regs) checkRegistration(schema, r, report);
        // The walk reached nested objects, lists, secrets and the provider's JSON-encoded inputs.
        expect([`${T.vm} initialization.ipConfigs.ipv4.address`, `${T.vm} disks.importFrom`, `${T.fwRules} rules.dport`, `${T.pveProvider} ssh.username`].filter((p) => !report.visited!.has(p))).toEqual([]);
        if (regs.some((r) => r.type === T.snippet)) expect(report.visited!.has(`${T.snippet} sourceRaw.data`)).toBe(true);
        expect(report.missing).toEqual([]);
        // Nothing the program sends is deprecated in this plugin (a deprecation is the next version's removal).
        expect([...new Set(report.deprecated)]).toEqual([]);
        if (label !== file) {
            // The variant really sends what it is for.
            const types = new Set(regs.map((r) => r.type));
            expect([T.haGroup, T.haResource].every((t) => types.has(t))).toBe(true);
            expect(regs.some((r) => r.type === T.vm && isSecretInput(r.inputs.initialization) === false && JSON.stringify(r.inputs.initialization).includes("userAccount"))).toBe(true);
            expect(regs.some((r) => r.type === T.bridge && r.inputs.mtu !== undefined && r.inputs.gateway !== undefined)).toBe(true);
        }
    }, 120_000);
});
