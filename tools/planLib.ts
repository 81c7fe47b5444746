/**
 * The offline plan: runs index.ts under the mock engine for a stack file and shapes the result into the
 * plan contract (see README "Offline plan"). Used by `npm run plan`, `npm run bench:plan` and the tests.
 */
import * as fs from "fs";
import * as path from "path";
import { OPTIONAL_SECRET_KEYS, SECRET_KEYS, SecretKey } from "../components/config/schema";
import { ConfigIssue } from "../components/config/validate";
import { longestChain, PlanResource, toPlanResources } from "./engine/graph";
import { RecordedResource, runProgram } from "./engine/mockHost";
import { readProject, readStackFile, SECRET_PLACEHOLDER, StackConfig } from "./engine/stackFile";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
export const PROGRAM = path.join(PROJECT_ROOT, "index.ts");

/** The plan contract (`npm run plan -- --json`). */
export interface PlanJson {
    stack: string;
    topology: string;
    members: { name: string; hypervisor: string | null; address: string; clientUrl: string; peerUrl: string }[];
    quorum: number;
    faultTolerance: { members: number; hypervisors: number | null };
    endpoints: string[];
    warnings: { code: string; message: string }[];
    resources: PlanResource[];
    depth: number;
}

export type PlanOutcome =
    | { ok: true; plan: PlanJson; notes: string[]; recorded: RecordedResource[] }
    | { ok: false; errors: ConfigIssue[]; notes: string[]; recorded: RecordedResource[] };

/** Finds the stack file: `Pulumi.<stack>.yaml` at the project root, then under examples/. */
export function resolveStackFile(stack: string, root = PROJECT_ROOT): string {
    for (const dir of [root, path.join(root, "examples")]) {
        const f = path.join(dir, `Pulumi.${stack}.yaml`);
        if (fs.existsSync(f)) return f;
    }
    throw new Error(`no stack file Pulumi.${stack}.yaml in ${root} or ${path.join(root, "examples")}`);
}

/** Reads a stack file; secret keys the file does not set get a placeholder, each with a note. */
export function loadStack(file: string): { stack: StackConfig; notes: string[] } {
    const stack = readStackFile(file, readProject(PROJECT_ROOT));
    const notes: string[] = [];
    for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
        if (OPTIONAL_SECRET_KEYS.has(key)) continue;
        const full = `${stack.project}:${key}`;
        if (!(full in stack.config)) {
            stack.config[full] = SECRET_PLACEHOLDER;
            stack.secretKeys.push(full);
            notes.push(`${full} is not set in ${path.basename(file)}; the plan uses a placeholder (pulumi up needs \`pulumi config set --secret ${full}\`)`);
        }
    }
    return { stack, notes };
}

function isConfigError(e: unknown): e is Error & { issues: ConfigIssue[] } {
    return e instanceof Error && e.name === "ConfigValidationError" && Array.isArray((e as { issues?: unknown }).issues);
}

/** Runs the program for a stack config and returns the plan, or the config errors. */
export async function computePlan(stack: StackConfig, notes: string[] = []): Promise<PlanOutcome> {
    let result;
    const recorded: RecordedResource[] = [];
    try {
        result = await runProgram({
            program: PROGRAM,
            project: stack.project,
            stack: stack.stack,
            config: stack.config,
            secretKeys: stack.secretKeys,
            preview: false,
            record: recorded,
        });
    } catch (e) {
        if (isConfigError(e)) return { ok: false, errors: e.issues, notes, recorded };
        throw e;
    }
    const o = result.outputs as {
        topology: string;
        members: { name: string; hypervisor?: string; address: string; clientUrl: string; peerUrl: string }[];
        quorum: number;
        faultTolerance: { members: number; hypervisors: number | null };
        clientEndpoints: string[];
        warnings: { code: string; message: string }[];
    };
    const plan: PlanJson = {
        stack: stack.stack,
        topology: o.topology,
        members: o.members.map((m) => ({
            name: m.name,
            hypervisor: m.hypervisor ?? null,
            address: m.address,
            clientUrl: m.clientUrl,
            peerUrl: m.peerUrl,
        })),
        quorum: o.quorum,
        faultTolerance: { members: o.faultTolerance.members, hypervisors: o.faultTolerance.hypervisors },
        endpoints: o.clientEndpoints,
        warnings: o.warnings.map((w) => ({ code: w.code, message: w.message })),
        resources: toPlanResources(result.resources),
        depth: longestChain(result.resources),
    };
    return { ok: true, plan, notes, recorded: result.resources };
}

function table(rows: string[][]): string {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** The resource tree, one line per resource, children indented under parents. */
export function renderTree(resources: readonly PlanResource[]): string {
    const children = new Map<string | null, PlanResource[]>();
    for (const r of resources) {
        const list = children.get(r.parent) ?? [];
        list.push(r);
        children.set(r.parent, list);
    }
    const lines: string[] = [];
    const walk = (parent: string | null, prefix: string) => {
        const list = children.get(parent) ?? [];
        list.forEach((r, i) => {
            const last = i === list.length - 1;
            const branch = parent === null ? "" : last ? "└─ " : "├─ ";
            const deps = r.dependsOn.length ? `  ← ${r.dependsOn.join(", ")}` : "";
            lines.push(`${prefix}${branch}${r.type}  ${r.name}${deps}`);
            walk(r.name, parent === null ? "" : prefix + (last ? "   " : "│  "));
        });
    };
    walk(null, "");
    return lines.join("\n");
}

/** Human-readable plan. */
export function renderPlan(p: PlanJson): string {
    const out: string[] = [];
    out.push(`Stack ${p.stack}: ${p.topology} topology, ${p.members.length} member${p.members.length === 1 ? "" : "s"}`);
    out.push("");
    out.push(
        table([
            ["MEMBER", "HYPERVISOR", "ADDRESS", "CLIENT URL", "PEER URL"],
            ...p.members.map((m) => [m.name, m.hypervisor ?? "-", m.address, m.clientUrl, m.peerUrl]),
        ]),
    );
    out.push("");
    const hv = p.faultTolerance.hypervisors;
    out.push(`Quorum: ${p.quorum} of ${p.members.length}`);
    out.push(`Fault tolerance: ${p.faultTolerance.members} member${p.faultTolerance.members === 1 ? "" : "s"}, ` + (hv === null ? "hypervisors unknown (hosts carry no hypervisor)" : `${hv} hypervisor${hv === 1 ? "" : "s"} (worst case)`));
    out.push("");
    if (p.warnings.length === 0) out.push("Warnings: none");
    else {
        out.push("Warnings:");
        for (const w of p.warnings) out.push(`  - [${w.code}] ${w.message}`);
    }
    out.push("");
    out.push(`Resources: ${p.resources.length}, longest dependency chain: ${p.depth}`);
    out.push(renderTree(p.resources));
    return out.join("\n") + "\n";
}

/** Human-readable config errors. */
export function renderErrors(errors: readonly ConfigIssue[]): string {
    return `Invalid stack configuration (${errors.length} problem${errors.length === 1 ? "" : "s"}):\n` + errors.map((e) => `  - ${e.path}: ${e.message}`).join("\n") + "\n";
}
