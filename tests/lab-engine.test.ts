/**
 * The engine stand-in's own rules, without hosts: secrets sealed in the state (never plain), Proxmox
 * resources refused in the lab, unknown inputs refused, no new step after the first failure, unchanged
 * resources kept ("same"), replacements condemn the old instance until finish(), random keepers rules,
 * removed resources deleted at the end, secret outputs marked; a run whose registration fails ends with
 * that failure instead of waiting for dependents that never resolve.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { COMMAND, LabEngine, mergeOutputs, StateResource } from "../tools/lab/engine/labEngine";
import { isSecretCiphertext, isSecretWrapper, reveal, SecretBox, wrapSecret } from "../tools/lab/engine/secrets";
import { fakePem, pemStart } from "./helpers/tokens";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-lab-engine-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const args = (type: string, name: string, inputs: Record<string, unknown>, custom = true): pulumi.runtime.MockResourceArgs => ({ type, name, inputs, custom });

describe("SecretBox", () => {
    test("seals every secret wrapper into ciphertext and opens it back; the key file is 0600", () => {
        const box = SecretBox.open(path.join(dir, "k"));
        expect(fs.statSync(path.join(dir, "k")).mode & 0o777).toBe(0o600);
        const value = { a: "plain", b: wrapSecret(fakePem("EC PRIVATE KEY", "xyz")), c: [wrapSecret({ deep: "s3cret" })] };
        const sealed = box.seal(value) as Record<string, unknown>;
        const text = JSON.stringify(sealed);
        expect(text).not.toContain("PRIVATE KEY");
        expect(text).not.toContain("s3cret");
        expect(sealed.a).toBe("plain");
        expect(isSecretCiphertext(sealed.b)).toBe(true);
        const opened = box.open(sealed) as Record<string, unknown>;
        expect(isSecretWrapper(opened.b)).toBe(true);
        expect(reveal(opened)).toEqual(reveal(value));
        // Another key cannot open it.
        expect(() => SecretBox.open(path.join(dir, "k2")).open(sealed)).toThrow();
    });
});

describe("LabEngine", () => {
    const quiet = { log: () => undefined };

    test("refuses Proxmox resources (the lab runs hosts mode), and starts nothing after the first failure", async () => {
        const e = new LabEngine(quiet);
        await expect(e.newResource(args("proxmoxve:VM/virtualMachineLegacy:VirtualMachineLegacy", "vm1", {}))).rejects.toThrow(/Proxmox resources are not used by the lab/);
        expect(e.failed).toBeDefined();
        await expect(e.newResource(args("random:index/randomString:RandomString", "r", { length: 8 }))).rejects.toThrow(/not started: the deployment stopped after an earlier failure/);
        expect(e.resources.size).toBe(0);
    });

    test("refuses unknown Command inputs and connection fields before dialling anything", async () => {
        const conn = wrapSecret({ host: "127.66.9.1", port: 22, user: "root", dialErrorLimit: 0, perDialTimeout: 1 });
        await expect(new LabEngine(quiet).newResource(args(COMMAND, "c1", { connection: conn, create: "true", timeout: 5 }))).rejects.toThrow(/unknown input\(s\) timeout/);
        const bad = wrapSecret({ host: "127.66.9.1", hostname: "x" });
        await expect(new LabEngine(quiet).newResource(args(COMMAND, "c2", { connection: bad, create: "true" }))).rejects.toThrow(/connection has unknown field\(s\) hostname/);
    });

    test("component resources are recorded, not created", async () => {
        const e = new LabEngine(quiet);
        const r = await e.newResource(args("etcd-ha:index:EtcdCluster", "etcd", {}, false));
        expect(r.id).toBeUndefined();
        expect(e.steps[0].op).toBe("component");
    });

    test("creates real values, marks provider secrets; unchanged keeps its outputs; a replacing change makes a new value and condemns the old", async () => {
        const e1 = new LabEngine(quiet);
        const key = await e1.newResource(args("tls:index/privateKey:PrivateKey", "k", { algorithm: "ECDSA", ecdsaCurve: "P256" }));
        expect(isSecretWrapper(key.state.privateKeyPem)).toBe(true);
        expect(String(reveal(key.state.privateKeyPem))).toMatch(pemStart("EC PRIVATE KEY"));
        expect(key.state.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
        const previous = new Map<string, StateResource>(e1.resources);
        const e2 = new LabEngine({ ...quiet, previous });
        const again = await e2.newResource(args("tls:index/privateKey:PrivateKey", "k", { algorithm: "ECDSA", ecdsaCurve: "P256" }));
        expect(again.id).toBe(key.id);
        expect(reveal(again.state.privateKeyPem)).toBe(reveal(key.state.privateKeyPem));
        expect(e2.steps[0].op).toBe("same");
        const e3 = new LabEngine({ ...quiet, previous });
        const replaced = await e3.newResource(args("tls:index/privateKey:PrivateKey", "k", { algorithm: "ECDSA", ecdsaCurve: "P384" }));
        expect(e3.steps[0]).toMatchObject({ op: "replace", changed: ["ecdsaCurve"] });
        expect(reveal(replaced.state.privateKeyPem)).not.toBe(reveal(key.state.privateKeyPem));
        // Create-before-delete: the old key waits for finish(), which deletes it (tls has nothing to run).
        expect(e3.pendingDeletes.map((r) => r.id)).toEqual([key.id]);
        expect(await e3.finish()).toBeUndefined();
        expect(e3.pendingDeletes).toEqual([]);
        expect(e3.steps.map((s) => s.op)).toEqual(["replace", "delete"]);
    });

    test("random keepers: a null-only change updates in place and keeps the value; a real change replaces", async () => {
        const type = "random:index/randomString:RandomString";
        const e1 = new LabEngine(quiet);
        const first = await e1.newResource(args(type, "r", { length: 12, keepers: { a: "1" } }));
        const e2 = new LabEngine({ ...quiet, previous: new Map(e1.resources) });
        const kept = await e2.newResource(args(type, "r", { length: 12, keepers: { a: "1", b: null } }));
        expect(e2.steps[0].op).toBe("update");
        expect(kept.state.result).toBe(first.state.result);
        const e3 = new LabEngine({ ...quiet, previous: new Map(e1.resources) });
        const fresh = await e3.newResource(args(type, "r", { length: 12, keepers: { a: "2" } }));
        expect(e3.steps[0].op).toBe("replace");
        expect(fresh.state.result).not.toBe(first.state.result);
    });

    test("a resource gone from the program is deleted by finish(), not before; components just go", async () => {
        const e1 = new LabEngine(quiet);
        await e1.newResource(args("random:index/randomString:RandomString", "gone", { length: 8 }));
        await e1.newResource(args("etcd-ha:index:EtcdCluster", "etcd", {}, false));
        const e2 = new LabEngine({ ...quiet, previous: new Map(e1.resources) });
        expect(e2.steps).toEqual([]);
        expect(await e2.finish()).toBeUndefined();
        expect(e2.steps.map((s) => [s.name, s.op])).toEqual([["gone", "delete"]]);
    });

    test("an unknown provider input value is an error, never ignored", async () => {
        await expect(new LabEngine(quiet).newResource(args("tls:index/privateKey:PrivateKey", "k", { algorithm: "ECDSA", ecdsaCurv: "P256" }))).rejects.toThrow(/ecdsaCurv/);
    });
});

describe("runProgram after a failed registration", () => {
    test("ends the run with the first failure once nothing is in flight (no wait for dependents that never resolve)", () => {
        // In a process of its own: jest's sandboxed `process` never sees the SDK's unhandled rejections.
        const root = path.resolve(__dirname, "..");
        const r = spawnSync(path.join(root, "node_modules", ".bin", "ts-node"), ["--transpile-only", path.join(__dirname, "fixtures", "failed-run.ts")], { encoding: "utf8", timeout: 60_000 });
        expect(r.status).toBe(1);
        const line = JSON.parse(r.stdout.trim().split("\n").pop()!) as { ok: boolean; error?: string; ms: number; reached: string[] };
        expect(line.ok).toBe(false);
        expect(line.error).toContain("a is refused by the provider");
        // `b` waits for `a` and never reaches the provider; `c` does.
        expect(line.reached).toEqual(["a", "c"]);
        // The failure after 200 ms, then a quiet second: well under the 60 s bound.
        expect(line.ms).toBeLessThan(10_000);
        expect(r.stderr).not.toContain("promises were still active");
    }, 90_000);
});

describe("mergeOutputs", () => {
    test("secret outputs and echoed secret inputs are wrapped; others are plain", () => {
        const state = mergeOutputs({ privateKeyPem: wrapSecret("k"), subject: { commonName: "x" } }, { privateKeyPem: "k", certRequestPem: "csr", subject: { commonName: "x" } }, []);
        expect(isSecretWrapper(state.privateKeyPem)).toBe(true);
        expect(state.certRequestPem).toBe("csr");
        const pw = mergeOutputs({ length: 8 }, { result: "p", length: 8 }, ["result"]);
        expect(isSecretWrapper(pw.result)).toBe(true);
    });
});
