/**
 * The lab engine's second-run rules (day-2 groundwork): update versus replace per provider, secrets and
 * ignoreChanges in the diff, the tls renewal window, random keepers, and the reverse-dependency delete
 * layers. Each expectation is a fact stated, with its upstream source, in docs/engine-fidelity.md.
 */
import { changedKeys, decideStep, deleteLayers, keepersReplace, readyForRenewal } from "../tools/lab/engine/steps";
import { wrapSecret as secret } from "../tools/lab/engine/secrets";
import { T } from "./helpers/tokens";
const cmd = { connection: secret({ host: "10.0.0.1", user: "ubuntu" }), create: "echo 1", logging: "stdoutAndStderr" };

describe("Command and CopyToRemote: only triggers replace", () => {
    it("no change is the same step (nothing runs, the old stdout is returned)", () => {
        expect(decideStep(T.command, { inputs: cmd, outputs: {} }, { ...cmd })).toEqual({ kind: "same", changed: [], replaceKeys: [] });
    });

    it.each([
        ["create", { create: "echo 2" }],
        ["delete", { delete: "rm -f /x" }],
        ["connection", { connection: secret({ host: "10.0.0.9", user: "ubuntu" }) }],
        ["stdin", { stdin: "data" }],
    ])("a changed %s is an update", (key, over) => {
        expect(decideStep(T.command, { inputs: cmd, outputs: {} }, { ...cmd, ...over })).toEqual({ kind: "update", changed: [key], replaceKeys: [] });
    });

    it("changed triggers replace, for Command and CopyToRemote alike", () => {
        expect(decideStep(T.command, { inputs: { ...cmd, triggers: ["a"] }, outputs: {} }, { ...cmd, triggers: ["b"] }).kind).toBe("replace");
        const copy = { connection: cmd.connection, remotePath: "/var/tmp/x", source: { hash: "h1" } };
        expect(decideStep(T.copyToRemote, { inputs: copy, outputs: {} }, { ...copy, source: { hash: "h2" } }).kind).toBe("update");
        expect(decideStep(T.copyToRemote, { inputs: copy, outputs: {} }, { ...copy, triggers: [1] }).replaceKeys).toEqual(["triggers"]);
    });

    it("secretness alone is no change; ignoreChanges keeps the old value", () => {
        expect(changedKeys({ a: secret("x") }, { a: "x" })).toEqual([]);
        expect(decideStep(T.command, { inputs: cmd, outputs: {} }, { ...cmd, create: "echo 2" }, { ignoreChanges: ["create"] }).kind).toBe("same");
    });

    it("a type without rules is refused, never guessed", () => {
        expect(() => decideStep("proxmoxve:index/vmLegacy:VmLegacy", { inputs: {}, outputs: {} }, {})).toThrow(/no diff rules for proxmoxve:index\/vmLegacy:VmLegacy/);
    });
});

describe("tls and random", () => {
    const now = Date.parse("2026-11-21T12:00:00Z");
    const leaf = { caCertPem: "ca", caPrivateKeyPem: secret("k"), certRequestPem: "csr", validityPeriodHours: 8760, earlyRenewalHours: 720, allowedUses: ["server_auth"] };
    const fresh = { validityEndTime: "2027-06-01T00:00:00Z" };

    it("a certificate: a new CSR or CA replaces, earlyRenewalHours updates in place", () => {
        expect(decideStep(T.locallySignedCert, { inputs: leaf, outputs: fresh }, { ...leaf, certRequestPem: "csr2" }, { nowMs: now })).toEqual({
            kind: "replace",
            changed: ["certRequestPem"],
            replaceKeys: ["certRequestPem"],
        });
        expect(decideStep(T.locallySignedCert, { inputs: leaf, outputs: fresh }, { ...leaf, earlyRenewalHours: 1000 }, { nowMs: now }).kind).toBe("update");
        expect(decideStep(T.selfSignedCert, { inputs: { ...leaf }, outputs: fresh }, { ...leaf, allowedUses: ["cert_signing"] }, { nowMs: now }).kind).toBe("replace");
    });

    it("a certificate inside its early-renewal window is replaced with no input change", () => {
        // Ends 2026-12-10: 720 h before that is 2026-11-10, already past.
        const due = { validityEndTime: "2026-12-10T00:00:00Z" };
        expect(readyForRenewal(leaf, due, now)).toBe(true);
        expect(readyForRenewal(leaf, fresh, now)).toBe(false);
        expect(decideStep(T.locallySignedCert, { inputs: leaf, outputs: due }, { ...leaf }, { nowMs: now })).toEqual({ kind: "replace", changed: [], replaceKeys: ["readyForRenewal"] });
        // A window as long as the validity renews on every run.
        expect(readyForRenewal({ validityPeriodHours: 24, earlyRenewalHours: 24 }, fresh, now)).toBe(true);
    });

    it("keys and requests: algorithm or curve replace a key; any change replaces a request", () => {
        expect(decideStep(T.privateKey, { inputs: { algorithm: "ECDSA", ecdsaCurve: "P256" }, outputs: {} }, { algorithm: "ECDSA", ecdsaCurve: "P384" }).kind).toBe("replace");
        expect(decideStep(T.certRequest, { inputs: { dnsNames: ["a"] }, outputs: {} }, { dnsNames: ["a", "b"] }).kind).toBe("replace");
    });

    it("random keepers replace on a changed, added or removed non-null value, not on nulls", () => {
        expect(keepersReplace({ a: "1" }, { a: "2" })).toBe(true);
        expect(keepersReplace({}, { a: "1" })).toBe(true);
        expect(keepersReplace({ a: "1" }, {})).toBe(true);
        expect(keepersReplace({ a: null }, {})).toBe(false);
        expect(keepersReplace(undefined, { a: null })).toBe(false);
        const s = { length: 16, special: false };
        expect(decideStep(T.randomString, { inputs: s, outputs: {} }, { ...s, length: 20 }).kind).toBe("replace");
        expect(decideStep(T.randomString, { inputs: { ...s, keepers: { a: null } }, outputs: {} }, s)).toEqual({ kind: "update", changed: ["keepers"], replaceKeys: [] });
    });
});

describe("delete schedule", () => {
    it("deletes dependents before what they depend on, in parallel layers", () => {
        // vm ← ready ← prepare ← start; cert ← certs step; start depends on certs step.
        const layers = deleteLayers([
            { urn: "vm", dependencies: [] },
            { urn: "ready", dependencies: ["vm"] },
            { urn: "prepare", dependencies: ["ready"] },
            { urn: "certs", dependencies: ["prepare", "cert"] },
            { urn: "start", dependencies: ["certs", "prepare"] },
            { urn: "cert", dependencies: [] },
        ]);
        expect(layers).toEqual([["start"], ["certs"], ["cert", "prepare"], ["ready"], ["vm"]]);
    });

    it("ignores dependencies on resources that stay; refuses a cycle", () => {
        expect(deleteLayers([{ urn: "a", dependencies: ["kept"] }, { urn: "b", dependencies: ["kept"] }])).toEqual([["a", "b"]]);
        expect(() => deleteLayers([{ urn: "a", dependencies: ["b"] }, { urn: "b", dependencies: ["a"] }])).toThrow(/dependency cycle among a, b/);
    });
});
