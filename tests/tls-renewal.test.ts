/**
 * The certificates' time rule, on the real engine and the real tls provider, without waiting: the provider
 * re-issues a certificate in a run once `validityEnd - earlyRenewalHours <= now` (it reads the real clock).
 * A certificate whose early-renewal window covers its whole validity is inside the window from its first
 * second, so the next run re-issues it (new serial, same key); one whose window opens an hour before expiry
 * is not re-issued. The etcd-ha config refuses such a window (it would renew on every run): this is a scratch
 * program of two certificates, not the cluster's PKI. What cannot be shown here: a certificate of the
 * cluster crossing into its 30-day window, which takes 11 months of the shared clock; `etcd.pki.renew` (the
 * lab's renewal tests) re-issues the same leaves through the same provider instead.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { pulumiEnv, pulumiOk, pulumiRun, stackInit, StepRecord } from "../tools/lab/pulumi";

const ROOT = path.resolve(__dirname, "..");
let dir: string;
let env: Record<string, string>;

const PROGRAM = `import * as tls from "@pulumi/tls";
const key = new tls.PrivateKey("key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
const cert = (name: string, earlyRenewalHours: number) =>
    new tls.SelfSignedCert(name, {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: name },
        validityPeriodHours: 2,
        earlyRenewalHours,
        allowedUses: ["digital_signature"],
    });
const inWindow = cert("in-window", 2);
const outside = cert("outside", 1);
export const serials = { inWindow: inWindow.id, outside: outside.id };
export const ends = { inWindow: inWindow.validityEndTime, outside: outside.validityEndTime };
`;

beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-tls-renewal-"));
    const project = path.join(dir, "project");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: tls-renewal\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n");
    fs.writeFileSync(path.join(project, "index.ts"), PROGRAM);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "tls-renewal", private: true }));
    fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, target: "ES2020", module: "commonjs", moduleResolution: "node", esModuleInterop: true } }));
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"));
    env = pulumiEnv(dir);
    stackInit(dir, "t", env, "tls-renewal");
}, 120_000);

afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function up(): Promise<{ steps: StepRecord[]; outputs: { serials: Record<string, string>; ends: Record<string, string> } }> {
    const cwd = path.join(dir, "project");
    const r = await pulumiRun(["up", "--yes", "--skip-preview", "--stack", "t"], env, { cwd, print: () => undefined, eventLog: path.join(dir, "events.jsonl"), timeoutMs: 300_000 });
    if (r.status !== 0) throw new Error(`pulumi up failed:\n${r.errors.join("\n")}\n${r.lines.slice(-20).join("\n")}`);
    return { steps: r.steps, outputs: JSON.parse(pulumiOk(["stack", "output", "--json", "--stack", "t"], env, { cwd })) };
}

test("the real tls provider re-issues a certificate inside its early-renewal window on the next run (new serial, same key), not one outside it", async () => {
    const first = await up();
    expect(first.steps.filter((s) => s.op === "create").map((s) => s.name).sort()).toEqual(["in-window", "key", "outside"]);
    const second = await up();
    const op = (n: string) => second.steps.filter((s) => s.name === n && s.op !== "component").map((s) => s.op);
    // Replaced: created anew, the old one deleted at the end of the run (create-before-delete).
    expect(op("in-window")).toEqual(["replace", "delete"]);
    expect(op("outside")).toEqual(["same"]);
    expect(op("key")).toEqual(["same"]);
    expect(second.outputs.serials.inWindow).not.toBe(first.outputs.serials.inWindow);
    expect(second.outputs.serials.outside).toBe(first.outputs.serials.outside);
    expect(Date.parse(second.outputs.ends.inWindow)).toBeGreaterThan(Date.parse(first.outputs.ends.inWindow));
}, 300_000);
