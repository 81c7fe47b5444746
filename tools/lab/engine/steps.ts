/**
 * What the real engine decides on a second run, as pure functions, for the resource types the program
 * uses (day-2 groundwork for the lab engine): the step for a registered resource given its stored inputs
 * (same, update or replace, by each provider's diff rules), and the order deletes run in at the end of a
 * run (reverse dependency layers). Facts and sources: docs/engine-fidelity.md. Nothing here runs anything.
 */
import { reveal } from "./secrets";

/** The step the engine takes for a resource that is registered again. */
export type StepKind = "same" | "update" | "replace";

export interface StepDecision {
    kind: StepKind;
    /** Top-level inputs whose values differ (after unwrapping secrets and applying ignoreChanges). */
    changed: string[];
    /** Inputs (or `readyForRenewal`) that force the replacement, when kind is replace. */
    replaceKeys: string[];
}

/** Key order and undefined properties do not count, as in serialized inputs. */
function canonical(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(canonical);
    if (typeof v === "object" && v !== null) {
        return Object.fromEntries(
            Object.keys(v)
                .sort()
                .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
                .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        );
    }
    return v;
}

/** True when two values serialize alike (key order and undefined properties ignored). */
export function sameValue(a: unknown, b: unknown): boolean {
    return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Top-level keys whose values differ between two input sets, secrets unwrapped (secretness never decides a diff). */
export function changedKeys(oldInputs: Record<string, unknown>, newInputs: Record<string, unknown>, ignore: readonly string[] = []): string[] {
    const o = reveal(oldInputs) as Record<string, unknown>;
    const n = reveal(newInputs) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(o), ...Object.keys(n)])].sort();
    return keys.filter((k) => !ignore.includes(k) && !sameValue(o[k], n[k]));
}

/** Per type: which changed inputs force a replacement (the rest update in place). */
const REPLACE_RULES: Record<string, (key: string) => boolean> = {
    // Only triggers replace; every other input change (connection, create, delete, stdin, …) is an update.
    "command:remote:Command": (k) => k === "triggers",
    "command:remote:CopyToRemote": (k) => k === "triggers",
    "tls:index/privateKey:PrivateKey": (k) => ["algorithm", "rsaBits", "ecdsaCurve"].includes(k),
    "tls:index/certRequest:CertRequest": () => true,
    "tls:index/selfSignedCert:SelfSignedCert": (k) => k !== "earlyRenewalHours",
    "tls:index/locallySignedCert:LocallySignedCert": (k) =>
        ["caCertPem", "caPrivateKeyPem", "certRequestPem", "validityPeriodHours", "allowedUses", "isCaCertificate", "maxPathLength", "setSubjectKeyId"].includes(k),
    "random:index/randomString:RandomString": (k) => k !== "keepers",
    "random:index/randomPassword:RandomPassword": (k) => k !== "keepers",
};

const CERT_TYPES = new Set(["tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"]);

/**
 * Random's `keepers` (RequiresReplaceIfValuesNotNull): replace when a value changes, a key with a
 * non-null value is added, or a key is removed; changes involving only null values do not.
 */
export function keepersReplace(oldK: unknown, newK: unknown): boolean {
    const o = (reveal(oldK) ?? {}) as Record<string, unknown>;
    const n = (reveal(newK) ?? {}) as Record<string, unknown>;
    for (const k of new Set([...Object.keys(o), ...Object.keys(n)])) {
        const a = o[k] ?? null;
        const b = n[k] ?? null;
        if (a === null && b === null) continue;
        if (!(k in n) || a !== b) return true;
    }
    return false;
}

/**
 * The tls provider's renewal check on every plan: a certificate whose `validityEndTime − earlyRenewalHours`
 * has passed (or whose window covers its whole validity) is replaced.
 */
export function readyForRenewal(inputs: Record<string, unknown>, outputs: Record<string, unknown>, nowMs: number): boolean {
    const validity = Number(reveal(inputs.validityPeriodHours) ?? 0);
    const early = Number(reveal(inputs.earlyRenewalHours) ?? 0);
    if (validity === 0 || early >= validity) return true;
    const end = Date.parse(String(reveal(outputs.validityEndTime) ?? ""));
    if (Number.isNaN(end)) return false;
    return end - early * 3_600_000 <= nowMs;
}

/**
 * The step for one resource registered again: its type, the stored inputs and outputs, the new inputs,
 * and the `ignoreChanges` option (top-level keys; the old value is kept for them).
 */
export function decideStep(
    type: string,
    old: { inputs: Record<string, unknown>; outputs: Record<string, unknown> },
    newInputs: Record<string, unknown>,
    opts: { ignoreChanges?: readonly string[]; nowMs?: number } = {},
): StepDecision {
    const rule = REPLACE_RULES[type];
    if (!rule) throw new Error(`the lab engine has no diff rules for ${type}: add them from the provider's schema before using it in a second run`);
    const changed = changedKeys(old.inputs, newInputs, opts.ignoreChanges ?? []);
    const replaceKeys = changed.filter((k) => (k === "keepers" ? keepersReplace(old.inputs.keepers, newInputs.keepers) : rule(k)));
    if (CERT_TYPES.has(type) && readyForRenewal(newInputs, old.outputs, opts.nowMs ?? Date.now())) replaceKeys.push("readyForRenewal");
    if (replaceKeys.length > 0) return { kind: "replace", changed, replaceKeys };
    return { kind: changed.length > 0 ? "update" : "same", changed, replaceKeys: [] };
}

/**
 * The end-of-run delete schedule: resources to delete (removed from the program, and old halves of
 * create-before-delete replacements) in reverse dependency layers. A resource is deleted only after every
 * other condemned resource that depends on it; each layer runs in parallel, the next after it finishes.
 */
export function deleteLayers(condemned: readonly { urn: string; dependencies: readonly string[] }[]): string[][] {
    const set = new Set(condemned.map((c) => c.urn));
    // dependents[x] = condemned resources that depend on x
    const dependents = new Map<string, Set<string>>([...set].map((u) => [u, new Set<string>()]));
    for (const c of condemned) for (const d of c.dependencies) if (set.has(d) && d !== c.urn) dependents.get(d)!.add(c.urn);
    const layers: string[][] = [];
    const done = new Set<string>();
    while (done.size < set.size) {
        const layer = [...set].filter((u) => !done.has(u) && [...dependents.get(u)!].every((d) => done.has(d))).sort();
        if (layer.length === 0) throw new Error(`dependency cycle among ${[...set].filter((u) => !done.has(u)).join(", ")}`);
        layer.forEach((u) => done.add(u));
        layers.push(layer);
    }
    return layers;
}
