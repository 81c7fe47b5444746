/**
 * Reads a Pulumi project file and a stack file into the flat config map the Pulumi runtime uses
 * (`namespace:key` → string; structured values as JSON), without the Pulumi CLI. Secure values are never
 * decrypted: they become the placeholder `[secret]` and are listed as secret keys.
 */
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";

export const SECRET_PLACEHOLDER = "[secret]";

export interface StackConfig {
    project: string;
    stack: string;
    /** `namespace:key` → value as the runtime stores it. */
    config: Record<string, string>;
    /** Keys holding secrets. */
    secretKeys: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Project name and project-level config defaults (`config: {key: {value: …}}`) from Pulumi.yaml. */
export function readProject(projectDir: string): { name: string; config: Record<string, string> } {
    const file = path.join(projectDir, "Pulumi.yaml");
    const doc: unknown = YAML.parse(fs.readFileSync(file, "utf8"));
    if (!isRecord(doc) || typeof doc.name !== "string") throw new Error(`${file}: no project name`);
    const config: Record<string, string> = {};
    if (isRecord(doc.config)) {
        for (const [k, v] of Object.entries(doc.config)) {
            if (isRecord(v) && "value" in v) config[qualify(k, doc.name)] = encode(v.value);
        }
    }
    return { name: doc.name, config };
}

function qualify(key: string, project: string): string {
    return key.includes(":") ? key : `${project}:${key}`;
}

function encode(v: unknown): string {
    return typeof v === "string" ? v : JSON.stringify(v);
}

function containsSecure(v: unknown): boolean {
    if (isRecord(v)) return "secure" in v || Object.values(v).some(containsSecure);
    if (Array.isArray(v)) return v.some(containsSecure);
    return false;
}

/**
 * Reads `Pulumi.<stack>.yaml` (or any stack-format file) for `project`. The stack name is taken from the
 * file name (`Pulumi.dev.yaml` → `dev`).
 */
export function readStackFile(file: string, project: { name: string; config: Record<string, string> }): StackConfig {
    const base = path.basename(file);
    const m = /^Pulumi\.(.+)\.ya?ml$/.exec(base);
    const stack = m ? m[1] : base.replace(/\.ya?ml$/, "");
    const text = fs.readFileSync(file, "utf8");
    const doc: unknown = YAML.parse(text) ?? {};
    if (!isRecord(doc)) throw new Error(`${file}: not a YAML mapping`);
    const config: Record<string, string> = { ...project.config };
    const secretKeys: string[] = [];
    const entries = isRecord(doc.config) ? doc.config : {};
    for (const [k, v] of Object.entries(entries)) {
        const key = qualify(k, project.name);
        if (isRecord(v) && typeof v.secure === "string" && Object.keys(v).length === 1) {
            config[key] = SECRET_PLACEHOLDER;
            secretKeys.push(key);
        } else if (containsSecure(v)) {
            // An object with nested secure values: Pulumi treats the whole key as secret.
            config[key] = SECRET_PLACEHOLDER;
            secretKeys.push(key);
        } else {
            config[key] = encode(v);
        }
    }
    return { project: project.name, stack, config, secretKeys };
}
