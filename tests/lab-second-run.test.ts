/**
 * The engine stand-in's second runs against one real lab host (engine-fidelity.md §1.2, §5.2–5.4): a small
 * program of remote commands is applied, changed and applied again, and the order in which the commands
 * really ran on the host is read back from a log file they append to.
 * - unchanged → nothing runs; a changed command runs `update` (else `create`) with the new inputs;
 *   editing only `delete` runs `update`;
 * - changed `triggers` replace: create-before-delete (the old `delete` at the very end of the run) by
 *   default, delete-before-create with `deleteBeforeReplace`;
 * - resources gone from the program run their stored `delete` at the end, in reverse dependency order;
 * - PULUMI_COMMAND_STDOUT refused by sshd is a warning, not a failure;
 * - after a failure no delete runs; the deletes stay pending and the next run does them.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { RecordedResource, runProgram } from "../tools/engine/mockHost";
import { COMMAND, LabEngine, registrationFrom, StateResource } from "../tools/lab/engine/labEngine";
import { wrapSecret } from "../tools/lab/engine/secrets";
import { ADMIN_USER, createHost, ensureRootfs, inHost, LabHost, preflight, stopHosts } from "../tools/lab/hosts";

const PREFIX = "127.66.3";
let dir: string;
let host: LabHost;
let privateKey: string;

beforeAll(async () => {
    preflight();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-second-run-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "id_ed25519")]);
    privateKey = fs.readFileSync(path.join(dir, "id_ed25519"), "utf8");
    host = await createHost({ dir, index: 0, prefix: PREFIX, pubkeyFile: path.join(dir, "id_ed25519.pub"), rootfs: ensureRootfs() });
}, 180_000);

afterAll(async () => {
    if (host) await stopHosts([host]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** One command of the test program: each script appends a line to ~/events. */
interface Spec {
    create?: string;
    update?: string;
    delete?: string;
    triggers?: string[];
    dependsOn?: string[];
    deleteBeforeReplace?: boolean;
}

const log = (event: string) => `echo ${event} >> "$HOME/events"`;

/** Applies a program of commands against the saved state, as `lab up` does; returns the engine and the events it caused. */
async function apply(specs: Record<string, Spec>, saved: { previous?: Map<string, StateResource>; pending?: StateResource[] }) {
    inHost(host, ["sh", "-c", `rm -f /home/${ADMIN_USER}/events`]);
    const record: RecordedResource[] = [];
    const lines: string[] = [];
    const engine = new LabEngine({ previous: saved.previous, pendingDeletes: saved.pending, registration: registrationFrom(record), log: (l) => lines.push(l), parallel: 4 });
    const connection = { host: host.address, user: ADMIN_USER, privateKey: pulumi.secret(privateKey) };
    let error: unknown;
    try {
        await runProgram({
            program: () => {
                const made = new Map<string, command.remote.Command>();
                for (const [name, s] of Object.entries(specs)) {
                    made.set(
                        name,
                        new command.remote.Command(
                            name,
                            { connection, create: s.create, update: s.update, delete: s.delete, triggers: s.triggers },
                            { dependsOn: (s.dependsOn ?? []).map((d) => made.get(d)!), deleteBeforeReplace: s.deleteBeforeReplace },
                        ),
                    );
                }
                // The stack waits for every output of every command, so a failed registration fails the
                // run (as the language host reports it) instead of surfacing as an unhandled rejection.
                const outputs = [...made.values()].flatMap((c) => Object.values(c).filter((v): v is pulumi.Output<unknown> => pulumi.Output.isInstance(v)));
                return { all: pulumi.all(outputs) };
            },
            project: "second-run",
            stack: "lab",
            config: {},
            secretKeys: [],
            record,
            newResource: engine.newResource,
        });
        error = await engine.finish();
    } catch (e) {
        error = engine.failed ?? e;
    }
    let events: string[] = [];
    try {
        events = inHost(host, ["cat", `/home/${ADMIN_USER}/events`]).trim().split("\n").filter(Boolean);
    } catch {
        events = [];
    }
    return { engine, events, error, lines, saved: { previous: new Map(engine.resources), pending: engine.pendingDeletes } };
}

const ops = (engine: LabEngine) => Object.fromEntries(engine.steps.filter((s) => s.op !== "component").map((s) => [`${s.name}`, s.op]));

describe("second runs of remote commands", () => {
    let state: { previous?: Map<string, StateResource>; pending?: StateResource[] } = {};

    const v1: Record<string, Spec> = {
        a: { create: log("a-create"), delete: log("a-delete") },
        b: { create: log("b-create"), delete: log("b-delete"), dependsOn: ["a"] },
        c: { create: log("c-create"), delete: log("c-delete"), dependsOn: ["b"] },
        t: { create: log("t-create-1"), delete: log("t-delete-1"), triggers: ["1"] },
        d: { create: log("d-create-1"), delete: log("d-delete-1"), triggers: ["1"], deleteBeforeReplace: true },
        u: { create: `${log("u-create-1")}; echo previous-output`, delete: log("u-delete-1") },
        v: { create: log("v-create"), update: log("v-update"), delete: log("v-delete-1") },
        s: { create: log("s-create"), delete: log("s-delete") },
    };

    test("a first run creates every command once", async () => {
        const r = await apply(v1, state);
        expect(r.error).toBeUndefined();
        expect([...r.events].sort()).toEqual(["a-create", "b-create", "c-create", "d-create-1", "s-create", "t-create-1", "u-create-1", "v-create"]);
        expect(Object.values(ops(r.engine)).every((op) => op === "create")).toBe(true);
        state = r.saved;
    }, 60_000);

    test("a second run updates, replaces and deletes in the engine's order", async () => {
        const v2: Record<string, Spec> = {
            a: v1.a,
            t: { ...v1.t, create: log("t-create-2"), delete: log("t-delete-2"), triggers: ["2"] },
            d: { ...v1.d, create: log("d-create-2"), delete: log("d-delete-2"), triggers: ["2"] },
            u: { ...v1.u, create: log("u-create-2"), delete: log("u-delete-2") },
            v: { ...v1.v, delete: log("v-delete-2") },
            s: v1.s,
            // b and c are gone from the program.
        };
        const r = await apply(v2, state);
        expect(r.error).toBeUndefined();
        expect(ops(r.engine)).toEqual({ a: "same", s: "same", t: "delete", d: "replace", u: "update", v: "update", c: "delete", b: "delete" });
        const at = (e: string) => {
            const i = r.events.indexOf(e);
            if (i < 0) throw new Error(`${e} did not run; events: ${r.events.join(" ")}`);
            return i;
        };
        // Nothing ran for unchanged a and s; u had no update command, so its new create ran; v ran update.
        expect(r.events.filter((e) => /^(a|s)-/.test(e))).toEqual([]);
        at("u-create-2");
        at("v-update");
        // deleteBeforeReplace: the old delete, then the new create, inside the run.
        expect(at("d-delete-1")).toBeLessThan(at("d-create-2"));
        // Create-before-delete: the old instance's (stored) delete runs at the end, after every create/update.
        const lastMain = Math.max(at("t-create-2"), at("d-create-2"), at("u-create-2"), at("v-update"));
        expect(at("t-delete-1")).toBeGreaterThan(lastMain);
        // Removed resources: their stored delete, dependents first (c depends on b).
        expect(at("c-delete")).toBeGreaterThan(lastMain);
        expect(at("c-delete")).toBeLessThan(at("b-delete"));
        // Stored, not new, delete commands ran; the new ones did not.
        expect(r.events).not.toContain("t-delete-2");
        expect(r.events).not.toContain("u-delete-1");
        expect(r.events.length).toBe(8);
        // u's previous stdout went as PULUMI_COMMAND_STDOUT, which this sshd refuses: a warning only.
        expect(r.lines.some((l) => /u: warning: Unable to set 'PULUMI_COMMAND_STDOUT'/.test(l))).toBe(true);
        expect(r.engine.pendingDeletes).toEqual([]);
        state = r.saved;
    }, 60_000);

    test("after a failure no delete runs; the next run finishes them", async () => {
        // Driven through newResource/finish directly (a program whose registration fails leaves the SDK's
        // rejected output promises to the language host, which jest would report as the test's failure).
        const urnOf = (name: string) => state.previous!.get(`${COMMAND}::${name}`)?.urn ?? `urn:pulumi:lab::second-run::pulumi:pulumi:Stack$${COMMAND}::${name}`;
        const connection = wrapSecret({ host: host.address, port: 22, user: ADMIN_USER, privateKey, dialErrorLimit: 10, perDialTimeout: 15 });
        const v3: [string, Spec][] = [
            ["t", { create: log("t-create-2"), delete: log("t-delete-2"), triggers: ["2"] }],
            ["s", { create: log("s-create"), delete: log("s-delete") }],
            ["boom", { create: `${log("boom")}; exit 3`, delete: log("boom-delete"), dependsOn: ["s"] }],
            ["v", { create: log("v-create"), update: log("v-update"), delete: log("v-delete-2") }],
            // a, d and u are gone: their deletes must wait for a successful run.
        ];
        const run = async (specs: [string, Spec][], saved: typeof state) => {
            inHost(host, ["sh", "-c", `rm -f /home/${ADMIN_USER}/events`]);
            const engine = new LabEngine({
                previous: saved.previous,
                pendingDeletes: saved.pending,
                registration: (_type, name) => {
                    const spec = specs.find(([n]) => n === name)![1];
                    return { urn: urnOf(name), dependencies: (spec.dependsOn ?? []).map(urnOf), options: { replaceOnChanges: ["triggers[*]"] } };
                },
                log: () => undefined,
            });
            let error: unknown;
            for (const [name, spec] of specs) {
                const inputs: Record<string, unknown> = { connection, create: spec.create, delete: spec.delete, ...(spec.update ? { update: spec.update } : {}), ...(spec.triggers ? { triggers: spec.triggers } : {}) };
                await engine.newResource({ type: COMMAND, name, inputs, custom: true }).catch((e: unknown) => (error ??= e));
            }
            const deleteError = error === undefined ? await engine.finish() : undefined;
            const events = inHost(host, ["sh", "-c", `cat /home/${ADMIN_USER}/events 2>/dev/null || true`]).trim().split("\n").filter(Boolean);
            return { engine, error: error ?? deleteError, events };
        };
        const failed = await run(v3, state);
        expect(String(failed.error)).toMatch(/boom on 127\.66\.3\.11: Process exited with status 3: running/);
        // boom failed; v (registered after it) did not start; no delete ran.
        expect(failed.events).toEqual(["boom"]);
        expect(failed.engine.resources.has(`${COMMAND}::boom`)).toBe(false);
        expect(ops(failed.engine)).toEqual({ t: "same", s: "same" });
        // The next run: what the failed run did not reach keeps its old state; boom is fixed.
        const carried = new Map(state.previous);
        for (const [k, r] of failed.engine.resources) carried.set(k, r);
        const fixed = v3.map(([n, s]): [string, Spec] => [n, n === "boom" ? { ...s, create: log("boom-fixed") } : s]);
        const r = await run(fixed, { previous: carried, pending: failed.engine.pendingDeletes });
        expect(r.error).toBeUndefined();
        expect(r.events.slice(0, 1)).toEqual(["boom-fixed"]);
        expect([...r.events.slice(1)].sort()).toEqual(["a-delete", "d-delete-2", "u-delete-2"]);
        expect(ops(r.engine)).toEqual({ t: "same", s: "same", boom: "create", v: "same", a: "delete", d: "delete", u: "delete" });
        expect(r.engine.pendingDeletes).toEqual([]);
    }, 60_000);
});
